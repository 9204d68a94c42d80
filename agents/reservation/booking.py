"""BookingOrchestration, stated once: Reservation's step table, which the runtime executes and the
observer, ``opengym catalog check``, the docs and the tests read.

A booking is keyed by booking_id (= correlation_id). Both deadlines run from the request's
``occurred_at`` and are compared with ``ClockTicked.now`` (tests move time by sending ticks).

| step | participant | request | replies | waits in | deadline | compensation |
| --- | --- | --- | --- | --- | --- | --- |
| HoldSeat | Reservation's seat keeper | SeatHoldRequested | SeatHeld, SeatRefused | HOLDING_SEAT | ``OPENGYM_SEAT_WAIT_MS`` -> UNKNOWN | SeatReleaseRequested |
| ConsumeInstrument | Entitlement | InstrumentConsumeRequested | InstrumentConsumed, InstrumentConsumeDenied | CONSUMING | ``OPENGYM_BOOKING_TIMEOUT_MS`` -> ENTITLEMENT_TIMEOUT; a reply dated later is a timeout too | InstrumentReleaseRequested(LATE_CONSUME) |
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.catalog import Compensation, Orchestration, Step, Terminal, fails, succeeds
from opengym_streams.component import labelled
from opengym_streams.event import value_of
from opengym.models import (InstrumentConsumeRequested, InstrumentReleaseRequested, RejectionReason,
                            ReleaseReason, ReservationConfirmed, ReservationRejected, SeatHoldRequested,
                            SeatReleaseRequested)
from opengym_streams.settings import env_ms, from_env, knob

SECOND = 1000

HOLDING_SEAT = "HOLDING_SEAT"
CONSUMING = "CONSUMING"
CONFIRMED = "CONFIRMED"
REJECTED = "REJECTED"

DENIAL_TO_REJECTION = {
    "NO_ENTITLEMENT": RejectionReason.NO_ENTITLEMENT,
    "CREDITS_EXHAUSTED": RejectionReason.CREDITS_EXHAUSTED,
    "MEMBERSHIP_EXPIRED": RejectionReason.MEMBERSHIP_EXPIRED,
}
REFUSAL_TO_REJECTION = {"CLASS_FULL": RejectionReason.CLASS_FULL, "UNKNOWN_CLASS": RejectionReason.UNKNOWN_CLASS}


@dataclass(frozen=True)
class BookingConfig:
    timeout_ms: int = knob("OPENGYM_BOOKING_TIMEOUT_MS", 5000,
                           "Reservation's deadline for Entitlement's reply, from the request's occurred_at")
    seat_wait_ms: int = knob("OPENGYM_SEAT_WAIT_MS", 60_000,
                             "backstop for the seat step: only a hold request lost to a dead letter waits this long")

    @classmethod
    def from_env(cls) -> "BookingConfig":
        return from_env(cls)


def _start(request) -> dict:
    return {"booking_id": request.booking_id, "member_id": request.member_id, "class_id": request.class_id}


def _hold(data: dict, cause, now: int) -> SeatHoldRequested:
    return SeatHoldRequested.new(caused_by=cause, occurred_at=now, booking_id=data["booking_id"],
                                 member_id=data["member_id"], class_id=data["class_id"])


def _release_seat(data: dict, cause, now: int) -> SeatReleaseRequested:
    return SeatReleaseRequested.new(caused_by=cause, correlation_id=data["booking_id"], discriminator=data["booking_id"],
                                    occurred_at=now, booking_id=data["booking_id"], class_id=data["class_id"])


def _consume(data: dict, cause, now: int) -> InstrumentConsumeRequested:
    return InstrumentConsumeRequested.new(
        caused_by=cause, occurred_at=now, booking_id=data["booking_id"], member_id=data["member_id"],
        class_id=data["class_id"], gym_id=data["gym_id"], class_starts_at=data["starts_at"])


def _release_instrument(data: dict, cause, now: int) -> InstrumentReleaseRequested:
    return InstrumentReleaseRequested.new(
        caused_by=cause, occurred_at=now, booking_id=data["booking_id"], member_id=data["member_id"],
        instrument_id=data["instrument_id"], reason=ReleaseReason.LATE_CONSUME)


def _confirmed(data: dict, cause, now: int) -> ReservationConfirmed:
    return ReservationConfirmed.new(
        caused_by=cause, occurred_at=now, booking_id=data["booking_id"], member_id=data["member_id"],
        class_id=data["class_id"], gym_id=data.get("gym_id"), home_gym_id=data.get("home_gym_id"),
        instrument_id=data.get("instrument_id"), instrument_kind=data.get("instrument_kind"),
        starts_at=data.get("starts_at"))


def _rejected(data: dict, cause, now: int, reason) -> ReservationRejected:
    return ReservationRejected.new(caused_by=cause, correlation_id=data["booking_id"], discriminator=data["booking_id"],
                                   occurred_at=now, booking_id=data["booking_id"], member_id=data["member_id"],
                                   class_id=data["class_id"], reason=reason)


def orchestration(config: BookingConfig | None = None) -> Orchestration:
    config = config or BookingConfig.from_env()
    return Orchestration(
        "BookingOrchestration", owner="reservation", trigger="BookClassRequested", start=_start,
        steps=(
            Step("HoldSeat", participant="reservation", request="SeatHoldRequested", ask=_hold,
                 replies=(succeeds("SeatHeld", keep=lambda e: {"gym_id": e.gym_id, "starts_at": e.starts_at}),
                          fails("SeatRefused",
                                lambda e: REFUSAL_TO_REJECTION.get(value_of(e.reason), RejectionReason.UNKNOWN))),
                 waits_in=HOLDING_SEAT, deadline_ms=config.seat_wait_ms, on_timeout=RejectionReason.UNKNOWN,
                 compensation=Compensation("SeatReleaseRequested", _release_seat),
                 doc="Hold a seat against the class capacity (Reservation's seat keeper, keyed by class_id); "
                     "a full class rejects at once. The backstop deadline only ends a booking whose hold "
                     "request was lost to a dead letter."),
            Step("ConsumeInstrument", participant="entitlement", request="InstrumentConsumeRequested",
                 ask=_consume, process="InstrumentConsumeProcess",
                 replies=(succeeds("InstrumentConsumed",
                                   keep=lambda e: {"instrument_id": e.instrument_id,
                                                   "instrument_kind": value_of(e.instrument_kind),
                                                   "home_gym_id": e.home_gym_id}),
                          fails("InstrumentConsumeDenied",
                                lambda e: DENIAL_TO_REJECTION.get(value_of(e.reason), RejectionReason.UNKNOWN))),
                 waits_in=CONSUMING, deadline_ms=config.timeout_ms, on_timeout=RejectionReason.ENTITLEMENT_TIMEOUT,
                 late_reply="time_out",
                 compensation=Compensation(
                     "InstrumentReleaseRequested", _release_instrument, process="InstrumentReleaseProcess",
                     replies=("InstrumentReleased",),
                     deadline_ms=env_ms("INSTRUMENT_RELEASE_PROCESS_DEADLINE", 10 * SECOND,
                                        "how long Entitlement may take to release a late consume"),
                     outcome="late_consume_released",
                     doc="Give back a use consumed after the orchestration gave up (no member loses a credit)."),
                 doc="Consume one use of the member's class pack or unlimited membership; control returns."),
        ),
        succeeded=Terminal("ReservationConfirmed", _confirmed, "confirmed"),
        failed=Terminal("ReservationRejected", _rejected, labelled("rejected", "reason")),
        succeeded_phase=CONFIRMED, failed_phase=REJECTED,
        doc="Reservation owns the booking from request to terminal event.",
    )
