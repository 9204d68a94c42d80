"""Entitlement's rules: pure functions from (member state, event) to (state, events).

One JSON record per member (keyed by member_id)::

    {"member_id",
     "instruments": {instrument_id: {"kind", "home_gym_id", "credits", "valid_from", "valid_until"}},
     "bookings": {booking_id: {"outcome": "CONSUMED" | "DENIED", "instrument_id", "reason", "released",
                               "said": [reply id, its cause, its time, credits left], "said_release": [...]}},
     "delayed": [{"due_at", "event": <event JSON>, "left"}]}

``bookings`` makes consume and release idempotent per booking, whatever the event ids: a
redelivered or repeated consume for the same booking never takes a second credit, and is answered
again with the very reply it got the first time (same event id, same content), so an orchestration
that lost its state in a crash and asks again is never left waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from opengym_streams.codec import build_event
from opengym_streams.event import Event, Handler, Ignored, Result, ignore, share_of
from opengym_streams.models import ClockTicked
from opengym.models import (DenialReason, InstrumentConsumed, InstrumentConsumeDenied,
                            InstrumentConsumeRequested, InstrumentGranted, InstrumentGrantRequested,
                            InstrumentKind, InstrumentReleased, InstrumentReleaseRequested)
from opengym_streams.settings import from_env, knob

CONSUMED = "CONSUMED"
DENIED = "DENIED"


@dataclass(frozen=True)
class EntitlementConfig:
    delay_share: float = knob("OPENGYM_ENTITLEMENT_DELAY_SHARE", 0.0,
                              "share (0..1) of consume requests whose reply Entitlement holds back, by booking id")
    delay_ms: int = knob("OPENGYM_ENTITLEMENT_DELAY_MS", 0,
                         "how long a held-back reply waits (in state, released by a tick; never a sleep)")

    @classmethod
    def from_env(cls) -> "EntitlementConfig":
        return from_env(cls)

    def delays(self, booking_id: str) -> bool:
        return self.delay_ms > 0 and share_of(booking_id, "entitlement-delay") < self.delay_share


def _empty(member_id: str) -> dict:
    return {"member_id": member_id, "instruments": {}, "bookings": {}, "delayed": []}


def _kind(value) -> str:
    return getattr(value, "value", value)


def grant(state: dict | None, event: InstrumentGrantRequested, now: int) -> Result | Ignored:
    member = state or _empty(event.member_id)
    if event.instrument_id in member["instruments"]:
        return ignore("instrument granted before")
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


def _said(reply: Event, credits_left: int | None = None) -> list:
    """What a reply needs to be said again exactly (its id, cause and time; the rest is in the state)."""
    return [reply.event_id, reply.causation_id, reply.occurred_at, credits_left]


def _consume_reply(member: dict, booking_id: str, record: dict) -> Event:
    event_id, cause, at, left = record["said"]
    envelope = dict(event_id=event_id, correlation_id=booking_id, causation_id=cause, occurred_at=at,
                    booking_id=booking_id, member_id=member["member_id"])
    if record["outcome"] == DENIED:
        return InstrumentConsumeDenied(**envelope, reason=record["reason"])
    instrument = member["instruments"][record["instrument_id"]]
    return InstrumentConsumed(**envelope, instrument_id=record["instrument_id"], instrument_kind=instrument["kind"],
                              home_gym_id=instrument["home_gym_id"], credits_remaining=left)


def consume(state: dict | None, event: InstrumentConsumeRequested, now: int, config: EntitlementConfig) -> Result | Ignored:
    member = state or _empty(event.member_id)
    answered = member["bookings"].get(event.booking_id)
    if answered is not None:  # never consume twice; say again what was said
        if answered.get("said") is None:
            return ignore("reply held back by the delay knob")
        return member, [_consume_reply(member, event.booking_id, answered)]
    instrument_id, denial = choose_instrument(member["instruments"], event.class_starts_at)
    if instrument_id is None:
        reply: Event = InstrumentConsumeDenied.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                                   member_id=event.member_id, reason=denial)
        record = {"outcome": DENIED, "reason": denial.value}
        instruments = member["instruments"]
        left = None
    else:
        instrument = dict(member["instruments"][instrument_id])
        pack = instrument["kind"] == InstrumentKind.CLASS_PACK.value
        if pack:
            instrument["credits"] -= 1
        left = instrument["credits"] if pack else None
        reply = InstrumentConsumed.new(
            caused_by=event, occurred_at=now, booking_id=event.booking_id, member_id=event.member_id,
            instrument_id=instrument_id, instrument_kind=instrument["kind"], home_gym_id=instrument["home_gym_id"],
            credits_remaining=left)
        record = {"outcome": CONSUMED, "instrument_id": instrument_id, "released": False}
        instruments = {**member["instruments"], instrument_id: instrument}
    if config.delays(event.booking_id):
        held = {"due_at": now + config.delay_ms, "event": reply.to_json_dict(), "left": left}
        return {**member, "instruments": instruments, "bookings": {**member["bookings"], event.booking_id: record},
                "delayed": [*member["delayed"], held]}, []
    record["said"] = _said(reply, left)
    return {**member, "instruments": instruments, "bookings": {**member["bookings"], event.booking_id: record}}, [reply]


def release(state: dict | None, event: InstrumentReleaseRequested, now: int) -> Result | Ignored:
    record = (state or {"bookings": {}})["bookings"].get(event.booking_id)
    if record is None or record["outcome"] != CONSUMED:
        return ignore("nothing consumed for this booking")
    instrument_id = record["instrument_id"]
    if record["released"]:  # say again what was said
        event_id, cause, at, left = record["said_release"]
        return state, [InstrumentReleased(event_id=event_id, correlation_id=event.booking_id, causation_id=cause,
                                          occurred_at=at, booking_id=event.booking_id, member_id=state["member_id"],
                                          instrument_id=instrument_id, credits_remaining=left)]
    instrument = dict(state["instruments"][instrument_id])
    pack = instrument["kind"] == InstrumentKind.CLASS_PACK.value
    if pack:
        instrument["credits"] += 1
    left = instrument["credits"] if pack else None
    released = InstrumentReleased.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                      member_id=event.member_id, instrument_id=instrument_id, credits_remaining=left)
    answered = {**record, "released": True, "said_release": _said(released, left)}
    return ({**state, "instruments": {**state["instruments"], instrument_id: instrument},
             "bookings": {**state["bookings"], event.booking_id: answered}}, [released])


def release_delayed(state: dict, tick: ClockTicked, now: int) -> Result | Ignored:
    due = [held for held in state["delayed"] if held["due_at"] <= now]
    if not due:
        return ignore("no held-back reply is due")
    bookings = dict(state["bookings"])
    replies = [build_event(held["event"], fill_envelope=False) for held in due]
    for held, reply in zip(due, replies):
        bookings[reply.booking_id] = {**bookings[reply.booking_id], "said": _said(reply, held.get("left"))}
    return ({**state, "bookings": bookings, "delayed": [held for held in state["delayed"] if held["due_at"] > now]},
            replies)


def handlers(config: EntitlementConfig) -> dict[str, Handler]:
    return {
        "InstrumentGrantRequested": grant,
        "InstrumentConsumeRequested": partial(consume, config=config),
        "InstrumentReleaseRequested": release,
        "ClockTicked": release_delayed,
    }


def wake_at(state: dict) -> int | None:
    """When a tick can next change this member: the earliest delayed answer's due time."""
    return min((held["due_at"] for held in state.get("delayed", ())), default=None)


def credits_left(state: dict | None) -> int:
    if not state:
        return 0
    return sum(i["credits"] or 0 for i in state["instruments"].values() if i["kind"] == InstrumentKind.CLASS_PACK.value)
