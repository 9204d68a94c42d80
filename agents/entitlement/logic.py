"""Entitlement's rules: pure functions from (member state, event) to (state, events).

One JSON record per member (keyed by member_id)::

    {"member_id",
     "instruments": {instrument_id: {"kind", "home_gym_id", "credits", "valid_from", "valid_until"}},
     "bookings": {booking_id: {"outcome": "CONSUMED" | "DENIED", "instrument_id", "released"}},
     "delayed": [{"due_at", "event": <event JSON>}],
     "seen": [...]}

``bookings`` makes consume and release idempotent per booking, whatever the event ids: a
redelivered or repeated consume for the same booking never takes a second credit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from streams.app import share_of
from streams.codec import build_event
from streams.event import Event, Result
from streams.models import (ClockTicked, DenialReason, InstrumentConsumed, InstrumentConsumeDenied,
                            InstrumentConsumeRequested, InstrumentGranted, InstrumentGrantRequested,
                            InstrumentKind, InstrumentReleased, InstrumentReleaseRequested)

CONSUMED = "CONSUMED"
DENIED = "DENIED"


@dataclass(frozen=True)
class EntitlementConfig:
    delay_share: float = 0.0
    """Share (0..1) of consume requests whose reply is held back, chosen by booking id."""
    delay_ms: int = 0

    @classmethod
    def from_env(cls) -> "EntitlementConfig":
        return cls(delay_share=float(os.environ.get("OPENGYM_ENTITLEMENT_DELAY_SHARE") or 0.0),
                   delay_ms=int(os.environ.get("OPENGYM_ENTITLEMENT_DELAY_MS") or 0))

    def delays(self, booking_id: str) -> bool:
        return self.delay_ms > 0 and share_of(booking_id, "entitlement-delay") < self.delay_share


def _empty(member_id: str) -> dict:
    return {"member_id": member_id, "instruments": {}, "bookings": {}, "delayed": []}


def _kind(value) -> str:
    return getattr(value, "value", value)


def grant(state: dict | None, event: InstrumentGrantRequested, now: int, config: EntitlementConfig) -> Result:
    member = state or _empty(event.member_id)
    if event.instrument_id in member["instruments"]:
        return member, []  # granted before: a grant is idempotent per instrument id
    instrument = {"kind": _kind(event.kind), "home_gym_id": event.home_gym_id, "credits": event.credits,
                  "valid_from": event.valid_from, "valid_until": event.valid_until, "order": len(member["instruments"])}
    granted = InstrumentGranted.new(caused_by=event, occurred_at=now, instrument_id=event.instrument_id,
                                    member_id=event.member_id, home_gym_id=event.home_gym_id, kind=event.kind,
                                    credits=event.credits, valid_until=event.valid_until)
    return {**member, "instruments": {**member["instruments"], event.instrument_id: instrument}}, [granted]


def _usable_unlimited(instrument: dict, at: int) -> bool:
    return (instrument["kind"] == InstrumentKind.UNLIMITED.value
            and (instrument["valid_from"] is None or instrument["valid_from"] <= at)
            and (instrument["valid_until"] is None or at <= instrument["valid_until"]))


def choose_instrument(instruments: dict, at: int) -> tuple[str | None, DenialReason | None]:
    """An unlimited membership valid at ``at`` first, else the oldest pack with credits left."""
    ordered = sorted(instruments.items(), key=lambda item: item[1].get("order", 0))
    for instrument_id, instrument in ordered:
        if _usable_unlimited(instrument, at):
            return instrument_id, None
    for instrument_id, instrument in ordered:
        if instrument["kind"] == InstrumentKind.CLASS_PACK.value and (instrument["credits"] or 0) > 0:
            return instrument_id, None
    if not instruments:
        return None, DenialReason.NO_ENTITLEMENT
    if any(i["kind"] == InstrumentKind.CLASS_PACK.value for i in instruments.values()):
        return None, DenialReason.CREDITS_EXHAUSTED
    return None, DenialReason.MEMBERSHIP_EXPIRED


def consume(state: dict | None, event: InstrumentConsumeRequested, now: int, config: EntitlementConfig) -> Result:
    member = state or _empty(event.member_id)
    if event.booking_id in member["bookings"]:
        return member, []  # this booking was answered before: never consume twice
    instrument_id, denial = choose_instrument(member["instruments"], event.class_starts_at)
    if instrument_id is None:
        reply: Event = InstrumentConsumeDenied.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                                   member_id=event.member_id, reason=denial)
        record = {"outcome": DENIED, "reason": denial.value}
        instruments = member["instruments"]
    else:
        instrument = dict(member["instruments"][instrument_id])
        if instrument["kind"] == InstrumentKind.CLASS_PACK.value:
            instrument["credits"] -= 1
        reply = InstrumentConsumed.new(
            caused_by=event, occurred_at=now, booking_id=event.booking_id, member_id=event.member_id,
            instrument_id=instrument_id, instrument_kind=instrument["kind"], home_gym_id=instrument["home_gym_id"],
            credits_remaining=instrument["credits"] if instrument["kind"] == InstrumentKind.CLASS_PACK.value else None)
        record = {"outcome": CONSUMED, "instrument_id": instrument_id, "released": False}
        instruments = {**member["instruments"], instrument_id: instrument}
    member = {**member, "instruments": instruments, "bookings": {**member["bookings"], event.booking_id: record}}
    if config.delays(event.booking_id):
        held = {"due_at": now + config.delay_ms, "event": reply.to_json_dict()}
        return {**member, "delayed": [*member["delayed"], held]}, []
    return member, [reply]


def release(state: dict | None, event: InstrumentReleaseRequested, now: int, config: EntitlementConfig) -> Result:
    if state is None:
        return None, []
    record = state["bookings"].get(event.booking_id)
    if record is None or record["outcome"] != CONSUMED or record["released"]:
        return state, []  # nothing consumed for this booking, or already given back
    instrument_id = record["instrument_id"]
    instrument = dict(state["instruments"][instrument_id])
    if instrument["kind"] == InstrumentKind.CLASS_PACK.value:
        instrument["credits"] += 1
    released = InstrumentReleased.new(
        caused_by=event, occurred_at=now, booking_id=event.booking_id, member_id=event.member_id,
        instrument_id=instrument_id,
        credits_remaining=instrument["credits"] if instrument["kind"] == InstrumentKind.CLASS_PACK.value else None)
    return ({**state, "instruments": {**state["instruments"], instrument_id: instrument},
             "bookings": {**state["bookings"], event.booking_id: {**record, "released": True}}}, [released])


def release_delayed(state: dict, tick: ClockTicked, now: int, config: EntitlementConfig) -> Result:
    due = [held for held in state["delayed"] if held["due_at"] <= tick.now]
    if not due:
        return state, []
    return ({**state, "delayed": [held for held in state["delayed"] if held["due_at"] > tick.now]},
            [build_event(held["event"], fill_envelope=False) for held in due])


HANDLERS = {
    "InstrumentGrantRequested": grant,
    "InstrumentConsumeRequested": consume,
    "InstrumentReleaseRequested": release,
    "ClockTicked": release_delayed,
}


def on_event(state: dict | None, event: Event, *, now: int, config: EntitlementConfig) -> Result:
    return HANDLERS[event.type_name](state, event, now, config)


def wake_at(state: dict) -> int | None:
    """When a tick can next change this member: the earliest delayed answer's due time."""
    return min((held["due_at"] for held in state.get("delayed", ())), default=None)


def has_due(state: dict, now: int) -> bool:
    wake = wake_at(state)
    return wake is not None and wake <= now


def credits_left(state: dict | None) -> int:
    if not state:
        return 0
    return sum(i["credits"] or 0 for i in state["instruments"].values() if i["kind"] == InstrumentKind.CLASS_PACK.value)
