"""Entitlement: listens to grant, consume and release requests; emits InstrumentGranted and the replies
InstrumentConsumed | InstrumentConsumeDenied and InstrumentReleased.

Requests arrive keyed by their correlation id (booking_id for consume and release), but what they
change is one member's instruments. So two agents:

- ``route_requests`` forwards every request, the same bytes, re-keyed by member_id, to
  ``opengym.entitlement.members``;
- ``keep_instruments`` (members, keyed by member_id) applies :mod:`agents.entitlement.logic`, answers a
  repeated request with what it said the first time, and handles the clock ticks that release replies
  held back by the delay knob (``OPENGYM_ENTITLEMENT_DELAY_SHARE``, ``OPENGYM_ENTITLEMENT_DELAY_MS``).

Run: ``opengym worker entitlement`` or ``faust -A agents.entitlement worker -l info``.
"""

from __future__ import annotations

from opengym import topics
from opengym.agents.entitlement import logic
from opengym_streams.component import Agent, Component, labelled, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    return Component(SYSTEM.component("entitlement"), topics=topics.CATALOG, settings=settings,
                     clock=topics.ENTITLEMENT_MEMBERS, agents=(
        Agent("route_requests", reads=(topics.ENTITLEMENT_REQUESTS,),
              forward=dict.fromkeys(topics.ENTITLEMENT_REQUESTS.short_names, topics.ENTITLEMENT_MEMBERS)),
        Agent("keep_instruments", reads=(topics.ENTITLEMENT_MEMBERS,), table="members", reanswer=True,
              handlers=logic.handlers(logic.EntitlementConfig.from_env()), wake=logic.wake_at,
              outcomes={"InstrumentConsumeDenied": labelled("denied", "reason"), "InstrumentConsumed": "consumed",
                        "InstrumentReleased": "released", "InstrumentGranted": "granted"}),
    ))


__getattr__ = module_app(build)
