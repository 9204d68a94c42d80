"""Pickers: the pickers' handhelds and their system. Listens to the warehouse's assignment, pick and return
requests and to its own clock; emits the replies PickerAssigned | NoPickerAvailable, PickConfirmed | PickFailed
and PickReturned. A pick's confirmation waits in state until the pick is done (a tick releases it).

Run: ``opengym --system order-fulfilment worker pickers``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.pickers import logic


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("pickers"), topics=topics.CATALOG, settings=settings,
                     clock=topics.PICKERS_CLOCK, agents=(
        Agent("work", reads=(topics.PICKERS_REQUESTS, topics.PICKERS_CLOCK), table="picks", reanswer=True,
              handlers=logic.handlers(logic.PickersConfig.from_env()), wake=logic.wake_at,
              outcomes={"PickerAssigned": "assigned", "NoPickerAvailable": "busy", "PickConfirmed": "picked",
                        "PickFailed": "failed", "PickReturned": "returned"}),
    ))


__getattr__ = module_app(build)
