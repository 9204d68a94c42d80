"""Entitlement: listens to grant, consume and release requests; emits InstrumentGranted and the replies
InstrumentConsumed | InstrumentConsumeDenied and InstrumentReleased.

Requests arrive keyed by their correlation id (booking_id for consume and release), but what they
change is one member's instruments. So two agents:

- ``route_requests`` reads ``opengym.entitlement.requests``, checks each request's contract, and
  forwards the same bytes re-keyed by member_id to ``opengym.entitlement.members``;
- ``keep_instruments`` (members, keyed by member_id) applies :mod:`agents.entitlement.logic` and
  handles the clock ticks that release replies held back by the delay knob
  (``OPENGYM_ENTITLEMENT_DELAY_SHARE``, ``OPENGYM_ENTITLEMENT_DELAY_MS``).

Run: ``opengym worker entitlement`` or ``faust -A agents.entitlement worker -l info``.
"""

from __future__ import annotations

import topics
from agents.entitlement import logic
from streams.app import Runtime, all_of, correlates_by, non_empty
from streams.event import Event
from streams.models import InstrumentKind

rt = Runtime("entitlement", clock=topics.ENTITLEMENT_MEMBERS)
app = rt.app
config = logic.EntitlementConfig.from_env()

members = rt.table("members", wake=logic.wake_at)


def valid_grant(event: Event) -> str | None:
    if not event.member_id or not event.instrument_id or not event.home_gym_id:
        return "member_id, instrument_id and home_gym_id must not be empty"
    if event.kind == InstrumentKind.CLASS_PACK and (event.credits is None or event.credits <= 0):
        return f"a CLASS_PACK needs credits > 0, got {event.credits}"
    if event.kind == InstrumentKind.UNLIMITED and event.valid_until is None:
        return "an UNLIMITED membership needs valid_until"
    if event.valid_from is not None and event.valid_until is not None and event.valid_until < event.valid_from:
        return "valid_until is before valid_from"
    return None


REQUESTS = {
    "InstrumentGrantRequested": valid_grant,
    "InstrumentConsumeRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "class_id")),
    "InstrumentReleaseRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "instrument_id")),
}


@rt.agent(topics.ENTITLEMENT_REQUESTS, accepts=REQUESTS)
async def route_requests(event, message):
    await rt.forward(message, event, topics.ENTITLEMENT_MEMBERS)


@rt.agent(topics.ENTITLEMENT_MEMBERS, accepts=REQUESTS)
async def keep_instruments(event, message):
    if event.type_name == "ClockTicked":
        for key, _ in rt.due(members, message.partition, event.now):
            _count(await rt.step(members, key, event, logic.on_event, now=event.now, config=config))
        return
    _count(await rt.step(members, event.member_id, event, logic.on_event, now=rt.now(), config=config))


def _count(emitted) -> None:
    for out in emitted:
        if out.type_name == "InstrumentConsumeDenied":
            rt.outcome(f"denied:{getattr(out.reason, 'value', out.reason)}")
        elif out.type_name in ("InstrumentConsumed", "InstrumentReleased", "InstrumentGranted"):
            rt.outcome(out.type_name.removeprefix("Instrument").lower())
