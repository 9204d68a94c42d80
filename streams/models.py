"""Event models derived from schemas/**/*.avsc by streams.modelgen. DO NOT EDIT.

Regenerate with `opengym contracts generate`; a unit test fails when this file drifts.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar

from pydantic import StrictBool, StrictInt, StrictStr

from streams.event import Event


class AnomalyKind(str, Enum):
    NESTED_TIMEOUT = "NESTED_TIMEOUT"
    DOWNSTREAM_NOT_STARTED = "DOWNSTREAM_NOT_STARTED"
    DOWNSTREAM_NOT_COMPLETED = "DOWNSTREAM_NOT_COMPLETED"
    CHAIN_STALLED = "CHAIN_STALLED"
    REPLY_WITHOUT_REQUEST = "REPLY_WITHOUT_REQUEST"
    LATE_REPLY = "LATE_REPLY"
    UNKNOWN = "UNKNOWN"


class Channel(str, Enum):
    EMAIL = "EMAIL"
    PUSH = "PUSH"
    SMS = "SMS"


class CheckInRejection(str, Enum):
    NO_PENDING_ATTENDANCE = "NO_PENDING_ATTENDANCE"
    ALREADY_RECORDED = "ALREADY_RECORDED"
    MEMBER_MISMATCH = "MEMBER_MISMATCH"
    UNKNOWN = "UNKNOWN"


class DenialReason(str, Enum):
    NO_ENTITLEMENT = "NO_ENTITLEMENT"
    CREDITS_EXHAUSTED = "CREDITS_EXHAUSTED"
    MEMBERSHIP_EXPIRED = "MEMBERSHIP_EXPIRED"
    UNKNOWN = "UNKNOWN"


class EscalationReason(str, Enum):
    PAYMENT_FAILED = "PAYMENT_FAILED"
    UNKNOWN = "UNKNOWN"


class InstrumentKind(str, Enum):
    CLASS_PACK = "CLASS_PACK"
    UNLIMITED = "UNLIMITED"


class PaymentFailureReason(str, Enum):
    DECLINED = "DECLINED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    GATEWAY_ERROR = "GATEWAY_ERROR"
    UNKNOWN = "UNKNOWN"


class RejectionReason(str, Enum):
    CLASS_FULL = "CLASS_FULL"
    UNKNOWN_CLASS = "UNKNOWN_CLASS"
    NO_ENTITLEMENT = "NO_ENTITLEMENT"
    CREDITS_EXHAUSTED = "CREDITS_EXHAUSTED"
    MEMBERSHIP_EXPIRED = "MEMBERSHIP_EXPIRED"
    ENTITLEMENT_TIMEOUT = "ENTITLEMENT_TIMEOUT"
    UNKNOWN = "UNKNOWN"


class ReleaseReason(str, Enum):
    LATE_CONSUME = "LATE_CONSUME"
    BOOKING_CANCELLED = "BOOKING_CANCELLED"
    UNKNOWN = "UNKNOWN"


class SeatRefusal(str, Enum):
    CLASS_FULL = "CLASS_FULL"
    UNKNOWN_CLASS = "UNKNOWN_CLASS"
    UNKNOWN = "UNKNOWN"


class AttendancePending(Event):
    """A confirmed booking awaits the member's check-in."""

    avro_name: ClassVar[str] = "opengym.attendance.AttendancePending"
    owner: ClassVar[str] = "attendance"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr
    gym_id: StrictStr | None = None
    home_gym_id: StrictStr | None = None


class AttendanceRecorded(Event):
    """The member attended; a visit at a partner gym starts settlement."""

    avro_name: ClassVar[str] = "opengym.attendance.AttendanceRecorded"
    owner: ClassVar[str] = "attendance"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr
    gym_id: StrictStr | None = None
    home_gym_id: StrictStr | None = None
    partner_visit: StrictBool


class CheckInRejected(Event):
    """A check-in had no pending attendance to match."""

    avro_name: ClassVar[str] = "opengym.attendance.CheckInRejected"
    owner: ClassVar[str] = "attendance"
    booking_id: StrictStr
    member_id: StrictStr
    reason: CheckInRejection


class CheckInRequested(Event):
    """A member checks in for a booked class."""

    avro_name: ClassVar[str] = "opengym.attendance.CheckInRequested"
    owner: ClassVar[str] = "attendance"
    booking_id: StrictStr
    member_id: StrictStr


class AnomalyDetected(Event):
    """The observer saw a transaction deviate from its catalog entry. It reports; it never acts."""

    avro_name: ClassVar[str] = "opengym.correlation.AnomalyDetected"
    owner: ClassVar[str] = "correlation"
    anomaly_id: StrictStr
    kind: AnomalyKind
    business_transaction: StrictStr
    process: StrictStr
    expected: StrictStr
    since: StrictInt
    deadline: StrictInt
    detected_at: StrictInt
    process_owner: StrictStr | None = None


class InstrumentConsumeDenied(Event):
    """Reply: nothing could be consumed for the booking."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentConsumeDenied"
    owner: ClassVar[str] = "entitlement"
    booking_id: StrictStr
    member_id: StrictStr
    reason: DenialReason


class InstrumentConsumeRequested(Event):
    """Nested request from Reservation: consume one use of the member's instrument for a booking."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentConsumeRequested"
    owner: ClassVar[str] = "entitlement"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr
    gym_id: StrictStr
    class_starts_at: StrictInt


class InstrumentConsumed(Event):
    """Reply: one use of an instrument was consumed for the booking."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentConsumed"
    owner: ClassVar[str] = "entitlement"
    booking_id: StrictStr
    member_id: StrictStr
    instrument_id: StrictStr
    instrument_kind: InstrumentKind
    home_gym_id: StrictStr
    credits_remaining: StrictInt | None = None


class InstrumentGrantRequested(Event):
    """Grant a member an instrument: a class pack or an unlimited membership."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentGrantRequested"
    owner: ClassVar[str] = "entitlement"
    instrument_id: StrictStr
    member_id: StrictStr
    home_gym_id: StrictStr
    kind: InstrumentKind
    credits: StrictInt | None = None
    valid_from: StrictInt | None = None
    valid_until: StrictInt | None = None


class InstrumentGranted(Event):
    """A member holds a new instrument."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentGranted"
    owner: ClassVar[str] = "entitlement"
    instrument_id: StrictStr
    member_id: StrictStr
    home_gym_id: StrictStr
    kind: InstrumentKind
    credits: StrictInt | None = None
    valid_until: StrictInt | None = None


class InstrumentReleaseRequested(Event):
    """Compensation from Reservation: give back what was consumed for a booking."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentReleaseRequested"
    owner: ClassVar[str] = "entitlement"
    booking_id: StrictStr
    member_id: StrictStr
    instrument_id: StrictStr
    reason: ReleaseReason


class InstrumentReleased(Event):
    """Reply: the use consumed for the booking was given back."""

    avro_name: ClassVar[str] = "opengym.entitlement.InstrumentReleased"
    owner: ClassVar[str] = "entitlement"
    booking_id: StrictStr
    member_id: StrictStr
    instrument_id: StrictStr
    credits_remaining: StrictInt | None = None


class PaymentFailed(Event):
    """The payment gateway refused the payment."""

    avro_name: ClassVar[str] = "opengym.finance.PaymentFailed"
    owner: ClassVar[str] = "finance"
    payment_id: StrictStr
    settlement_id: StrictStr
    reason: PaymentFailureReason


class PaymentInitiated(Event):
    """Finance started paying a settlement obligation."""

    avro_name: ClassVar[str] = "opengym.finance.PaymentInitiated"
    owner: ClassVar[str] = "finance"
    payment_id: StrictStr
    settlement_id: StrictStr
    payer_gym_id: StrictStr
    payee_gym_id: StrictStr
    amount_cents: StrictInt
    currency: StrictStr


class PaymentSettled(Event):
    """The payment gateway settled the payment."""

    avro_name: ClassVar[str] = "opengym.finance.PaymentSettled"
    owner: ClassVar[str] = "finance"
    payment_id: StrictStr
    settlement_id: StrictStr
    amount_cents: StrictInt


class NotificationSent(Event):
    """A (simulated) confirmation was sent to the member."""

    avro_name: ClassVar[str] = "opengym.notifications.NotificationSent"
    owner: ClassVar[str] = "notifications"
    booking_id: StrictStr
    member_id: StrictStr
    channel: Channel
    template: StrictStr


class SettlementConfirmed(Event):
    """Outcome: the settlement was paid."""

    avro_name: ClassVar[str] = "opengym.platform_billing.SettlementConfirmed"
    owner: ClassVar[str] = "platform-billing"
    settlement_id: StrictStr
    payment_id: StrictStr
    amount_cents: StrictInt


class SettlementEscalated(Event):
    """Outcome: the settlement could not be paid and needs a person."""

    avro_name: ClassVar[str] = "opengym.platform_billing.SettlementEscalated"
    owner: ClassVar[str] = "platform-billing"
    settlement_id: StrictStr
    payment_id: StrictStr | None = None
    reason: EscalationReason


class SettlementObligationCalculated(Event):
    """The home gym owes the partner gym for a visit."""

    avro_name: ClassVar[str] = "opengym.platform_billing.SettlementObligationCalculated"
    owner: ClassVar[str] = "platform-billing"
    settlement_id: StrictStr
    booking_id: StrictStr
    payer_gym_id: StrictStr
    payee_gym_id: StrictStr
    amount_cents: StrictInt
    currency: StrictStr


class BookClassRequested(Event):
    """A member asks to book a class (correlation_id = booking_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.BookClassRequested"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr


class ClassScheduled(Event):
    """A class is on the schedule and can be booked."""

    avro_name: ClassVar[str] = "opengym.reservation.ClassScheduled"
    owner: ClassVar[str] = "reservation"
    class_id: StrictStr
    gym_id: StrictStr
    capacity: StrictInt
    starts_at: StrictInt


class ReservationConfirmed(Event):
    """Terminal: the booking holds a seat and the member's instrument was consumed."""

    avro_name: ClassVar[str] = "opengym.reservation.ReservationConfirmed"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr
    gym_id: StrictStr | None = None
    home_gym_id: StrictStr | None = None
    instrument_id: StrictStr | None = None
    instrument_kind: InstrumentKind | None = None
    starts_at: StrictInt | None = None


class ReservationRejected(Event):
    """Terminal: the booking was refused and any held seat released."""

    avro_name: ClassVar[str] = "opengym.reservation.ReservationRejected"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr
    reason: RejectionReason


class ScheduleClassRequested(Event):
    """Put a class on the schedule with its capacity (correlation_id = class_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.ScheduleClassRequested"
    owner: ClassVar[str] = "reservation"
    class_id: StrictStr
    gym_id: StrictStr
    capacity: StrictInt
    starts_at: StrictInt


class SeatHeld(Event):
    """Internal to Reservation: the class has a seat held for the booking (keyed by booking_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.SeatHeld"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    class_id: StrictStr
    gym_id: StrictStr
    starts_at: StrictInt


class SeatHoldRequested(Event):
    """Internal to Reservation: hold one seat of a class for a booking (keyed by class_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.SeatHoldRequested"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    member_id: StrictStr
    class_id: StrictStr


class SeatRefused(Event):
    """Internal to Reservation: no seat could be held for the booking (keyed by booking_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.SeatRefused"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    class_id: StrictStr
    reason: SeatRefusal


class SeatReleaseRequested(Event):
    """Internal to Reservation: give back the seat a booking held (keyed by class_id)."""

    avro_name: ClassVar[str] = "opengym.reservation.SeatReleaseRequested"
    owner: ClassVar[str] = "reservation"
    booking_id: StrictStr
    class_id: StrictStr


class ClockTicked(Event):
    """A timer tick: time entering a component as data (correlation_id = 'clock')."""

    avro_name: ClassVar[str] = "opengym.streams.ClockTicked"
    owner: ClassVar[str] = "streams"
    now: StrictInt
    component: StrictStr


class DeadLetter(Event):
    """A message a component could not decode or that broke its contract."""

    avro_name: ClassVar[str] = "opengym.streams.DeadLetter"
    owner: ClassVar[str] = "streams"
    component: StrictStr
    source_topic: StrictStr
    source_partition: StrictInt
    source_offset: StrictInt
    error_kind: StrictStr
    reason: StrictStr
    key: bytes | None = None
    payload: bytes | None = None


class DeadLetterRedriven(Event):
    """An operator re-published a dead letter to the topic it came from (opengym dlq redrive, or the observer's UI). Recorded once per dead letter: redriving it again finds this record and sends nothing."""

    avro_name: ClassVar[str] = "opengym.streams.DeadLetterRedriven"
    owner: ClassVar[str] = "streams"
    component: StrictStr
    dead_letter_topic: StrictStr
    dead_letter_partition: StrictInt
    dead_letter_offset: StrictInt
    target_topic: StrictStr
    target_partition: StrictInt
    target_offset: StrictInt
    redriven_by: StrictStr
    error_kind: StrictStr | None = None


class BillingLineRecorded(Event):
    """The member's gym has a billing line for a confirmed booking."""

    avro_name: ClassVar[str] = "opengym.tenant_billing.BillingLineRecorded"
    owner: ClassVar[str] = "tenant-billing"
    booking_id: StrictStr
    member_id: StrictStr
    gym_id: StrictStr | None = None
    home_gym_id: StrictStr | None = None
    amount_cents: StrictInt
    currency: StrictStr


ALL_EVENTS: tuple[type[Event], ...] = (
    AnomalyDetected,
    AttendancePending,
    AttendanceRecorded,
    BillingLineRecorded,
    BookClassRequested,
    CheckInRejected,
    CheckInRequested,
    ClassScheduled,
    ClockTicked,
    DeadLetter,
    DeadLetterRedriven,
    InstrumentConsumeDenied,
    InstrumentConsumeRequested,
    InstrumentConsumed,
    InstrumentGrantRequested,
    InstrumentGranted,
    InstrumentReleaseRequested,
    InstrumentReleased,
    NotificationSent,
    PaymentFailed,
    PaymentInitiated,
    PaymentSettled,
    ReservationConfirmed,
    ReservationRejected,
    ScheduleClassRequested,
    SeatHeld,
    SeatHoldRequested,
    SeatRefused,
    SeatReleaseRequested,
    SettlementConfirmed,
    SettlementEscalated,
    SettlementObligationCalculated,
)
BY_AVRO_NAME: dict[str, type[Event]] = {cls.avro_name: cls for cls in ALL_EVENTS}
BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}
