"""The one topic catalog: every topic declared once, with its owner, key, events and partitions.

Code imports handles from here and never spells a topic name itself. Names are the contract; an
``OPENGYM_TOPIC_PREFIX`` (tests use it for isolation) is prepended at runtime by :func:`topic_name`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from streams.settings import get_settings

PARTITIONS = 4
"""Every contract topic has this many partitions, and so do the components' table changelogs
(tables are co-partitioned with the topics their agents read)."""

EXTERNAL = "external"
"""Owner name for producers outside OpenGym (members' apps, gym front desks, the demo driver)."""

COMPONENTS = (
    "reservation",
    "entitlement",
    "tenant-billing",
    "attendance",
    "notifications",
    "platform-billing",
    "finance",
    "correlation",
)

CLOCK = "opengym.streams.ClockTicked"
DEAD_LETTER = "opengym.streams.DeadLetter"
DEAD_LETTER_REDRIVEN = "opengym.streams.DeadLetterRedriven"


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    """The one component that produces the facts on it (commands topics: the component they command)."""
    events: tuple[str, ...]
    """Avro full names of the records it carries."""
    kind: str
    """commands | requests | events | anomalies | dlq | redrives | internal"""
    producers: tuple[str, ...] = ()
    """Who may write to it; defaults to the owner."""
    partitions: int = PARTITIONS
    key: str = "correlation_id"
    doc: str = ""

    @property
    def writers(self) -> tuple[str, ...]:
        return self.producers or (self.owner,)

    @property
    def runtime_name(self) -> str:
        return topic_name(self)


def topic_name(topic: Topic) -> str:
    # On every publish: read the one variable instead of building the whole Settings (a profile of a
    # worker showed get_settings() at 5% of its CPU here). Tests change the prefix per test, so no cache.
    return os.environ.get("OPENGYM_TOPIC_PREFIX", "") + topic.name


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
    "opengym.attendance.commands", "attendance", _ev("attendance", "CheckInRequested") + (CLOCK,),
    kind="commands", producers=(EXTERNAL, "attendance"), doc="Check-ins from the gyms' front desks.",
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
    "opengym.correlation.clock", "correlation", (CLOCK,), kind="commands",
    doc="The observer's own clock ticks (it has no commands topic of its own).",
)
FINANCE_CLOCK = Topic(
    "opengym.finance.clock", "finance", (CLOCK,), kind="commands",
    doc="Finance's clock ticks, which release payments the simulated gateway has delayed.",
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

INTERNAL_TOPICS: tuple[Topic, ...] = (RESERVATION_SEATS, RESERVATION_SEAT_REPLIES, ENTITLEMENT_MEMBERS)
"""Repartition topics inside one component (not contract topics: nobody else reads or writes them)."""


def _dlq(component: str) -> Topic:
    return Topic(f"opengym.{component}.dlq", component, (DEAD_LETTER,), kind="dlq",
                 doc=f"What {component} could not decode or what broke its contract, with the reason.")


DEAD_LETTERS: dict[str, Topic] = {component: _dlq(component) for component in COMPONENTS}


def _redrives(component: str) -> Topic:
    return Topic(f"opengym.{component}.redrives", component, (DEAD_LETTER_REDRIVEN,), kind="redrives",
                 producers=(EXTERNAL,), partitions=1,
                 doc=f"Which of {component}'s dead letters an operator re-published to their original topic "
                     "(opengym dlq redrive, or the observer's UI), one record per dead letter.")


REDRIVES: dict[str, Topic] = {component: _redrives(component) for component in COMPONENTS}
"""Beside each dead-letter topic, the record of its redrives (the operators' tool writes it, not the component)."""

CONTRACT_TOPICS: tuple[Topic, ...] = (
    RESERVATION_COMMANDS,
    RESERVATION_EVENTS,
    ENTITLEMENT_REQUESTS,
    ENTITLEMENT_EVENTS,
    TENANT_BILLING_EVENTS,
    ATTENDANCE_COMMANDS,
    ATTENDANCE_EVENTS,
    NOTIFICATIONS_EVENTS,
    PLATFORM_BILLING_EVENTS,
    FINANCE_EVENTS,
    FINANCE_CLOCK,
    CORRELATION_ANOMALIES,
    CORRELATION_CLOCK,
)

ALL_TOPICS: tuple[Topic, ...] = (CONTRACT_TOPICS + INTERNAL_TOPICS + tuple(DEAD_LETTERS.values())
                                  + tuple(REDRIVES.values()))

BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}


def topic_for_event(avro_name: str) -> Topic:
    """The one topic that carries a business event (clock ticks and dead letters have several)."""
    carriers = [t for t in CONTRACT_TOPICS if avro_name in t.events]
    if len(carriers) != 1:
        raise LookupError(f"{avro_name} is carried by {len(carriers)} topics; name the topic explicitly")
    return carriers[0]


def lookup(name: str) -> Topic:
    """A topic by contract name or by runtime (prefixed) name."""
    prefix = get_settings().topic_prefix
    if prefix and name.startswith(prefix) and name[len(prefix):] in BY_NAME:
        return BY_NAME[name[len(prefix):]]
    if name in BY_NAME:
        return BY_NAME[name]
    raise LookupError(f"unknown topic {name!r}; known topics: {', '.join(sorted(BY_NAME))}")
