"""The one topic catalog of OpenGym: every topic declared once, with its owner, key, events and
partitions, and the contract checks of the events they carry.

Code imports handles from here and never spells a topic name itself. Names are the contract; an
``OPENGYM_TOPIC_PREFIX`` (tests use it for isolation) is prepended at runtime by :func:`topic_name`.
Every component that owns a topic gets a dead-letter topic, ``opengym.<component>.dlq``, and beside it the
record of what operators redrove from it, ``opengym.<component>.redrives``.
"""

from __future__ import annotations

from opengym_streams.checks import all_of, correlates_by, non_empty, positive
from opengym.models import InstrumentKind
from opengym_streams.topic import CLOCK, DEAD_LETTER, EXTERNAL, Topic, TopicCatalog, topic_name  # noqa: F401

PARTITIONS = 4
"""Every topic has this many partitions, and so do the components' table changelogs (tables are
co-partitioned with the topics their agents read)."""


def _ev(owner: str, *names: str) -> tuple[str, ...]:
    return tuple(f"opengym.{owner.replace('-', '_')}.{n}" for n in names)


RESERVATION_COMMANDS = Topic(
    "opengym.reservation.commands", "reservation",
    _ev("reservation", "ScheduleClassRequested", "BookClassRequested") + (CLOCK,),
    kind="commands", producers=(EXTERNAL, "reservation"),
    doc="Requests to Reservation from outside, plus Reservation's own clock ticks.",
)
RESERVATION_EVENTS = Topic(
    "opengym.reservation.events", "reservation",
    _ev("reservation", "ClassScheduled", "ReservationConfirmed", "ReservationRejected"), kind="events",
    doc="Reservation's facts; ReservationConfirmed and ReservationRejected are BookingOrchestration's terminal events.",
)
ENTITLEMENT_REQUESTS = Topic(
    "opengym.entitlement.requests", "entitlement",
    _ev("entitlement", "InstrumentGrantRequested", "InstrumentConsumeRequested", "InstrumentReleaseRequested"),
    kind="requests", producers=(EXTERNAL, "reservation"),
    doc="Grants from outside; consume and release requests from Reservation (nested process).",
)
ENTITLEMENT_EVENTS = Topic(
    "opengym.entitlement.events", "entitlement",
    _ev("entitlement", "InstrumentGranted", "InstrumentConsumed", "InstrumentConsumeDenied", "InstrumentReleased"),
    kind="events", doc="Entitlement's facts, including the replies to consume and release requests.",
)
TENANT_BILLING_EVENTS = Topic(
    "opengym.tenant-billing.events", "tenant-billing", _ev("tenant-billing", "BillingLineRecorded"),
    kind="events", doc="Billing lines of the member's gym.",
)
ATTENDANCE_COMMANDS = Topic(
    "opengym.attendance.commands", "attendance", _ev("attendance", "CheckInRequested"),
    kind="commands", producers=(EXTERNAL,), doc="Check-ins from the gyms' front desks.",
)
ATTENDANCE_EVENTS = Topic(
    "opengym.attendance.events", "attendance",
    _ev("attendance", "AttendancePending", "AttendanceRecorded", "CheckInRejected"), kind="events",
    doc="Attendance facts; AttendanceRecorded with partner_visit starts the settlement choreography.",
)
NOTIFICATIONS_EVENTS = Topic(
    "opengym.notifications.events", "notifications", _ev("notifications", "NotificationSent"),
    kind="events", doc="Notifications sent to members.",
)
PLATFORM_BILLING_EVENTS = Topic(
    "opengym.platform-billing.events", "platform-billing",
    _ev("platform-billing", "SettlementObligationCalculated", "SettlementConfirmed", "SettlementEscalated"),
    kind="events", doc="What gyms owe each other, and how each settlement ended.",
)
FINANCE_EVENTS = Topic(
    "opengym.finance.events", "finance", _ev("finance", "PaymentInitiated", "PaymentSettled", "PaymentFailed"),
    kind="events", doc="Payments between gyms.",
)
CORRELATION_ANOMALIES = Topic(
    "opengym.correlation.anomalies", "correlation", _ev("correlation", "AnomalyDetected"), kind="anomalies",
    doc="What the observer saw go wrong. The observer publishes here and nowhere else (besides its DLQ).",
)
CORRELATION_CLOCK = Topic(
    "opengym.correlation.clock", "correlation", (CLOCK,), kind="clock",
    doc="The observer's own clock ticks (it has no commands topic of its own).",
)
RESERVATION_SEATS = Topic(
    "opengym.reservation.seats", "reservation",
    _ev("reservation", "ScheduleClassRequested", "SeatHoldRequested", "SeatReleaseRequested"),
    kind="internal", key="class_id",
    doc="Internal: Reservation repartitions class schedules and seat holds by class_id, so one class's "
        "capacity is decided in one place and can never be overbooked.",
)
RESERVATION_SEAT_REPLIES = Topic(
    "opengym.reservation.seat-replies", "reservation", _ev("reservation", "SeatHeld", "SeatRefused"),
    kind="internal", doc="Internal: the seat keeper's answers, back by booking_id to BookingOrchestration.",
)
ENTITLEMENT_MEMBERS = Topic(
    "opengym.entitlement.members", "entitlement",
    _ev("entitlement", "InstrumentGrantRequested", "InstrumentConsumeRequested", "InstrumentReleaseRequested")
    + (CLOCK,),
    kind="internal", key="member_id",
    doc="Internal: Entitlement repartitions its requests by member_id, so one member's instruments are "
        "changed in one place; its clock ticks release delayed replies.",
)

def valid_grant(event) -> str | None:
    if not event.member_id or not event.instrument_id or not event.home_gym_id:
        return "member_id, instrument_id and home_gym_id must not be empty"
    if event.kind == InstrumentKind.CLASS_PACK and (event.credits is None or event.credits <= 0):
        return f"a CLASS_PACK needs credits > 0, got {event.credits}"
    if event.kind == InstrumentKind.UNLIMITED and event.valid_until is None:
        return "an UNLIMITED membership needs valid_until"
    if event.valid_from is not None and event.valid_until is not None and event.valid_until < event.valid_from:
        return "valid_until is before valid_from"
    return None


def partner_visit_has_gyms(event) -> str | None:
    if event.partner_visit and not (event.gym_id and event.home_gym_id):
        return "a partner visit needs gym_id and home_gym_id"
    return None


CHECKS = {
    "BookClassRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "class_id")),
    "ScheduleClassRequested": all_of(correlates_by("class_id"), non_empty("gym_id"), positive("capacity")),
    "SeatHoldRequested": non_empty("booking_id", "class_id"),
    "SeatReleaseRequested": non_empty("booking_id", "class_id"),
    "SeatHeld": correlates_by("booking_id"),
    "SeatRefused": correlates_by("booking_id"),
    "InstrumentGrantRequested": valid_grant,
    "InstrumentConsumeRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "class_id")),
    "InstrumentReleaseRequested": all_of(correlates_by("booking_id"), non_empty("member_id", "instrument_id")),
    "InstrumentConsumed": correlates_by("booking_id"),
    "InstrumentConsumeDenied": correlates_by("booking_id"),
    "ReservationConfirmed": correlates_by("booking_id"),
    "CheckInRequested": all_of(correlates_by("booking_id"), non_empty("member_id")),
    "AttendanceRecorded": partner_visit_has_gyms,
    "SettlementObligationCalculated": all_of(non_empty("settlement_id", "payer_gym_id", "payee_gym_id"),
                                             positive("amount_cents")),
    "PaymentSettled": non_empty("settlement_id", "payment_id"),
    "PaymentFailed": non_empty("settlement_id", "payment_id"),
}
"""Each event's contract beyond its schema, checked by the runtime wherever the event is read."""

CATALOG = TopicCatalog(
    (RESERVATION_COMMANDS, RESERVATION_EVENTS, ENTITLEMENT_REQUESTS, ENTITLEMENT_EVENTS, TENANT_BILLING_EVENTS,
     ATTENDANCE_COMMANDS, ATTENDANCE_EVENTS, NOTIFICATIONS_EVENTS, PLATFORM_BILLING_EVENTS, FINANCE_EVENTS,
     CORRELATION_ANOMALIES, CORRELATION_CLOCK, RESERVATION_SEATS, RESERVATION_SEAT_REPLIES, ENTITLEMENT_MEMBERS),
    dead_letter_name="opengym.{component}.dlq", redrive_name="opengym.{component}.redrives", partitions=PARTITIONS,
    checks=CHECKS, app_name="opengym-{component}")

INTERNAL_TOPICS = CATALOG.internal
"""Repartition topics inside one component (not contract topics: nobody else reads or writes them)."""
DEAD_LETTERS = CATALOG.dead_letters
REDRIVES = CATALOG.redrives
"""Beside each dead-letter topic, the record of its redrives (the operators' tool writes it, not the component)."""
CONTRACT_TOPICS = CATALOG.contract
ALL_TOPICS = CATALOG.all
BY_NAME = CATALOG.by_name
COMPONENTS = CATALOG.owners
"""Every component that owns a topic (the registry in agents/system.py is checked against it)."""
topic_for_event = CATALOG.topic_for_event
lookup = CATALOG.lookup
