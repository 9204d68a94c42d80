"""BookingOrchestration as a step table: pure functions from (booking state, event) to (state, events).

Reservation owns a booking from ``BookClassRequested`` to its terminal event. The state is one JSON
record per booking (keyed by booking_id = correlation_id)::

    {"booking_id", "member_id", "class_id", "phase", "due_at", "gym_id", "starts_at",
     "instrument_id", "reason", "seen": [...]}

The deadline (``due_at``) is the request's ``occurred_at`` plus ``OPENGYM_BOOKING_TIMEOUT_MS``; it is
compared with ``ClockTicked.now``, so tests move time by sending ticks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from streams.codec import build_event
from streams.event import Event, Result
from streams.models import (BookClassRequested, ClockTicked, InstrumentConsumed, InstrumentConsumeDenied,
                            InstrumentConsumeRequested, InstrumentReleaseRequested, RejectionReason,
                            ReleaseReason, ReservationConfirmed, ReservationRejected, SeatHeld,
                            SeatHoldRequested, SeatRefused, SeatReleaseRequested)

HOLDING_SEAT = "HOLDING_SEAT"
CONSUMING = "CONSUMING"
CONFIRMED = "CONFIRMED"
REJECTED = "REJECTED"
OPEN_PHASES = (HOLDING_SEAT, CONSUMING)


@dataclass(frozen=True)
class BookingConfig:
    timeout_ms: int = 5000
    seat_wait_ms: int = 60_000
    """Backstop for the seat step: only a seat request lost to a dead letter waits this long."""

    @classmethod
    def from_env(cls) -> "BookingConfig":
        return cls(timeout_ms=int(os.environ.get("OPENGYM_BOOKING_TIMEOUT_MS", "5000")),
                   seat_wait_ms=int(os.environ.get("OPENGYM_SEAT_WAIT_MS", "60000")))


@dataclass(frozen=True)
class Step:
    name: str
    participant: str
    request: str
    replies: tuple[str, ...]
    deadline: str
    compensation: str


STEPS = (
    Step("HoldSeat", participant="Reservation's seat keeper (state keyed by class_id)",
         request="SeatHoldRequested", replies=("SeatHeld", "SeatRefused"),
         deadline="no booking deadline: the seat keeper is Reservation itself and answers when it runs; "
                  "a backstop (request occurred_at + OPENGYM_SEAT_WAIT_MS, default 60 s) rejects with "
                  "UNKNOWN only if the hold request was lost (dead-lettered)",
         compensation="SeatReleaseRequested, on any rejection after the seat was held"),
    Step("ConsumeInstrument", participant="Entitlement (nested InstrumentConsumeProcess)",
         request="InstrumentConsumeRequested", replies=("InstrumentConsumed", "InstrumentConsumeDenied"),
         deadline="the booking deadline (request occurred_at + OPENGYM_BOOKING_TIMEOUT_MS), checked "
                  "on ticks; on expiry: ReservationRejected(ENTITLEMENT_TIMEOUT) and the seat released",
         compensation="InstrumentReleaseRequested(LATE_CONSUME) for an InstrumentConsumed that arrives "
                      "after the booking was rejected"),
)
"""The orchestration at a glance; TRANSITIONS below is what runs."""

DENIAL_TO_REJECTION = {
    "NO_ENTITLEMENT": RejectionReason.NO_ENTITLEMENT,
    "CREDITS_EXHAUSTED": RejectionReason.CREDITS_EXHAUSTED,
    "MEMBERSHIP_EXPIRED": RejectionReason.MEMBERSHIP_EXPIRED,
}
REFUSAL_TO_REJECTION = {"CLASS_FULL": RejectionReason.CLASS_FULL, "UNKNOWN_CLASS": RejectionReason.UNKNOWN_CLASS}


def _value(enum_or_str) -> str:
    return getattr(enum_or_str, "value", enum_or_str)


def start(state: dict | None, event: BookClassRequested, now: int, config: BookingConfig) -> Result:
    booking = {"booking_id": event.booking_id, "member_id": event.member_id, "class_id": event.class_id,
               "phase": HOLDING_SEAT, "requested_at": event.occurred_at,
               "due_at": event.occurred_at + config.timeout_ms}
    hold = SeatHoldRequested.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                 member_id=event.member_id, class_id=event.class_id)
    return booking, [hold]


def request_consume(state: dict, event: SeatHeld, now: int, config: BookingConfig) -> Result:
    early = state.get("early_reply")
    if early is not None:
        # The reply to this booking's consume request is already here: the SeatHeld is a replay
        # (a restart lost our state change after we had asked). Asking again would be deduplicated by
        # Entitlement and never answered; decide on the reply we have.
        held = {**state, "phase": CONSUMING, "gym_id": event.gym_id, "starts_at": event.starts_at,
                "early_reply": None}
        reply = build_event(early)
        return (confirm if reply.type_name == "InstrumentConsumed" else reject_denied)(held, reply, now, config)
    consume = InstrumentConsumeRequested.new(
        caused_by=event, occurred_at=now, booking_id=state["booking_id"], member_id=state["member_id"],
        class_id=state["class_id"], gym_id=event.gym_id, class_starts_at=event.starts_at)
    return {**state, "phase": CONSUMING, "gym_id": event.gym_id, "starts_at": event.starts_at}, [consume]


def _rejected(state: dict, cause: Event, now: int, reason: RejectionReason) -> ReservationRejected:
    return ReservationRejected.new(caused_by=cause, correlation_id=state["booking_id"],
                                   discriminator=state["booking_id"], occurred_at=now,
                                   booking_id=state["booking_id"], member_id=state["member_id"],
                                   class_id=state["class_id"], reason=reason)


def _release_seat(state: dict, cause: Event, now: int) -> SeatReleaseRequested:
    return SeatReleaseRequested.new(caused_by=cause, correlation_id=state["booking_id"],
                                    discriminator=state["booking_id"], occurred_at=now,
                                    booking_id=state["booking_id"], class_id=state["class_id"])


def reject_refused(state: dict, event: SeatRefused, now: int, config: BookingConfig) -> Result:
    reason = REFUSAL_TO_REJECTION.get(_value(event.reason), RejectionReason.UNKNOWN)
    return ({**state, "phase": REJECTED, "reason": reason.value, "due_at": None},
            [_rejected(state, event, now, reason)])


def _late(state: dict, reply: Event) -> bool:
    """A reply dated after the deadline is late even when no tick has said so yet, so Reservation
    decides exactly as the observer judges (both by the facts' own times)."""
    return state.get("due_at") is not None and reply.occurred_at > state["due_at"]


def time_out_on_late_reply(state: dict, reply: Event, now: int) -> Result:
    reason = RejectionReason.ENTITLEMENT_TIMEOUT
    rejected = {**state, "phase": REJECTED, "reason": reason.value, "due_at": None, "timed_out": True}
    out: list[Event] = [_rejected(state, reply, now, reason), _release_seat(state, reply, now)]
    if reply.type_name == "InstrumentConsumed":
        released, compensation = release_late_consume(rejected, reply, now, BookingConfig())
        return released, out + compensation
    return rejected, out


def confirm(state: dict, event: InstrumentConsumed, now: int, config: BookingConfig) -> Result:
    if _late(state, event):
        return time_out_on_late_reply(state, event, now)
    confirmed = ReservationConfirmed.new(
        caused_by=event, occurred_at=now, booking_id=state["booking_id"], member_id=state["member_id"],
        class_id=state["class_id"], gym_id=state.get("gym_id"), home_gym_id=event.home_gym_id,
        instrument_id=event.instrument_id, instrument_kind=event.instrument_kind,
        starts_at=state.get("starts_at"))
    return ({**state, "phase": CONFIRMED, "due_at": None, "instrument_id": event.instrument_id},
            [confirmed])


def reject_denied(state: dict, event: InstrumentConsumeDenied, now: int, config: BookingConfig) -> Result:
    if _late(state, event):
        return time_out_on_late_reply(state, event, now)
    reason = DENIAL_TO_REJECTION.get(_value(event.reason), RejectionReason.UNKNOWN)
    return ({**state, "phase": REJECTED, "reason": reason.value, "due_at": None},
            [_rejected(state, event, now, reason), _release_seat(state, event, now)])


def give_up_waiting_for_a_seat(state: dict, tick: ClockTicked, now: int, config: BookingConfig) -> Result:
    if not is_due(state, tick.now, config):
        return state, []
    reason = RejectionReason.UNKNOWN
    return ({**state, "phase": REJECTED, "reason": reason.value, "due_at": None, "timed_out": True},
            [_rejected(state, tick, tick.now, reason)])


def time_out(state: dict, tick: ClockTicked, now: int, config: BookingConfig) -> Result:
    if state.get("due_at") is None or tick.now < state["due_at"]:
        return state, []
    reason = RejectionReason.ENTITLEMENT_TIMEOUT
    return ({**state, "phase": REJECTED, "reason": reason.value, "due_at": None, "timed_out": True},
            [_rejected(state, tick, tick.now, reason), _release_seat(state, tick, tick.now)])


def keep_early_reply(state: dict, event: Event, now: int, config: BookingConfig) -> Result:
    return {**state, "early_reply": event.to_json_dict()}, []


def release_late_seat(state: dict, event: SeatHeld, now: int, config: BookingConfig) -> Result:
    return state, [_release_seat(state, event, now)]


def release_late_consume(state: dict, event: InstrumentConsumed, now: int, config: BookingConfig) -> Result:
    release = InstrumentReleaseRequested.new(
        caused_by=event, occurred_at=now, booking_id=state["booking_id"], member_id=state["member_id"],
        instrument_id=event.instrument_id, reason=ReleaseReason.LATE_CONSUME)
    return {**state, "late_consume_released": event.instrument_id}, [release]


Transition = Callable[[dict, Event, int, BookingConfig], Result]

TRANSITIONS: dict[tuple[str | None, str], Transition] = {
    (None, "BookClassRequested"): start,
    (HOLDING_SEAT, "SeatHeld"): request_consume,
    (HOLDING_SEAT, "SeatRefused"): reject_refused,
    (HOLDING_SEAT, "ClockTicked"): give_up_waiting_for_a_seat,
    (HOLDING_SEAT, "InstrumentConsumed"): keep_early_reply,
    (HOLDING_SEAT, "InstrumentConsumeDenied"): keep_early_reply,
    (CONSUMING, "InstrumentConsumed"): confirm,
    (CONSUMING, "InstrumentConsumeDenied"): reject_denied,
    (CONSUMING, "ClockTicked"): time_out,
    (REJECTED, "SeatHeld"): release_late_seat,
    (REJECTED, "InstrumentConsumed"): release_late_consume,
}
"""(phase, event type) -> transition. Any other pair is ignored on purpose: a second
BookClassRequested for a booking under way, replies after a terminal event that need no
compensation (a denial after a timeout), replies for bookings this component never started."""


def on_event(state: dict | None, event: Event, *, now: int, config: BookingConfig) -> Result:
    phase = state["phase"] if state is not None else None
    transition = TRANSITIONS.get((phase, event.type_name))
    if transition is None:
        return state, []
    return transition(state, event, now, config)


def wake_at(state: dict, config: BookingConfig) -> int | None:
    """When a tick can next change this booking: its consume deadline or the end of its seat wait."""
    if state.get("phase") == CONSUMING:
        return state.get("due_at")
    if state.get("phase") == HOLDING_SEAT:
        return state["requested_at"] + config.seat_wait_ms
    return None


def is_due(state: dict, now: int, config: BookingConfig) -> bool:
    wake = wake_at(state, config)
    return wake is not None and wake <= now
