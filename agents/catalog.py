"""OpenGym's process catalog: who owns which process, what each waits for, and for how long.

Every duration can be overridden by environment, ``OPENGYM_<PROCESS>_<WHAT>_MS`` (for example
``OPENGYM_INSTRUMENT_CONSUME_PROCESS_DEADLINE_MS=2000``); :func:`build` reads them when called. The
consume deadline defaults to Reservation's own, ``OPENGYM_BOOKING_TIMEOUT_MS``, counted like Reservation
counts it: from ``BookClassRequested``.
"""

from __future__ import annotations

from streams.catalog import (BusinessTransaction, Catalog, Choreography, DownstreamProcess, Fact,
                             NestedPair, Orchestration, Step, env_ms)

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

BOOKING = "Member Books a Class"
SETTLEMENT = "Partner Visit Settlement"


def build() -> Catalog:
    consume = NestedPair(
        "InstrumentConsumeProcess", participant="entitlement",
        request="InstrumentConsumeRequested", replies=("InstrumentConsumed", "InstrumentConsumeDenied"),
        deadline_ms=env_ms("INSTRUMENT_CONSUME_PROCESS_DEADLINE", env_ms("BOOKING_TIMEOUT", 5 * SECOND)),
        deadline_from="trigger",
        doc="Consume one use of the member's class pack or unlimited membership; control returns.",
    )
    release = NestedPair(
        "InstrumentReleaseProcess", participant="entitlement",
        request="InstrumentReleaseRequested", replies=("InstrumentReleased",),
        deadline_ms=env_ms("INSTRUMENT_RELEASE_PROCESS_DEADLINE", 10 * SECOND), compensation=True,
        doc="Give back a use consumed after the orchestration gave up (no member loses a credit).",
    )
    booking = Orchestration(
        "BookingOrchestration", owner="reservation", trigger="BookClassRequested",
        steps=(
            Step("HoldSeat", "Hold a seat against the class capacity; a full class rejects at once."),
            Step("ConsumeInstrument", "Ask Entitlement to consume the member's instrument and wait for "
                 "the reply or the deadline.", invokes=consume.name, compensated_by=release.name),
            Step("Decide", "Confirm on InstrumentConsumed; reject and release the seat on a denial or "
                 "the deadline."),
        ),
        nested=(consume, release),
        terminal=("ReservationConfirmed", "ReservationRejected"),
        doc="Reservation owns the booking from request to terminal event.",
    )
    downstream = (
        DownstreamProcess(
            "BillingRecordProcess", owner="tenant-billing", trigger="ReservationConfirmed",
            start="BillingLineRecorded", completion="BillingLineRecorded",
            start_within_ms=env_ms("BILLING_RECORD_PROCESS_START_WITHIN", 30 * SECOND),
            complete_within_ms=env_ms("BILLING_RECORD_PROCESS_COMPLETE_WITHIN", 30 * SECOND),
            doc="The member's gym records a billing line for the confirmed booking.",
        ),
        DownstreamProcess(
            "AttendancePendingProcess", owner="attendance", trigger="ReservationConfirmed",
            start="AttendancePending", completion="AttendanceRecorded",
            start_within_ms=env_ms("ATTENDANCE_PENDING_PROCESS_START_WITHIN", 30 * SECOND),
            complete_within_ms=env_ms("ATTENDANCE_PENDING_PROCESS_COMPLETE_WITHIN", 24 * HOUR),
            doc="Attendance expects the member; a check-in records the attendance.",
        ),
        DownstreamProcess(
            "NotificationProcess", owner="notifications", trigger="ReservationConfirmed",
            start="NotificationSent", completion="NotificationSent",
            start_within_ms=env_ms("NOTIFICATION_PROCESS_START_WITHIN", 30 * SECOND),
            complete_within_ms=env_ms("NOTIFICATION_PROCESS_COMPLETE_WITHIN", 30 * SECOND),
            doc="Notifications reacts with a confirmation to the member (no orchestration).",
        ),
    )
    settlement = Choreography(
        "PartnerVisitSettlement",
        facts=(
            Fact(("AttendanceRecorded",), "attendance", where=(("partner_visit", True),),
                 stall_after_ms=env_ms("PARTNER_VISIT_SETTLEMENT_HOP1_STALL_AFTER", 30 * SECOND)),
            Fact(("SettlementObligationCalculated",), "platform-billing",
                 stall_after_ms=env_ms("PARTNER_VISIT_SETTLEMENT_HOP2_STALL_AFTER", 30 * SECOND)),
            Fact(("PaymentInitiated",), "finance",
                 stall_after_ms=env_ms("PARTNER_VISIT_SETTLEMENT_HOP3_STALL_AFTER", 2 * MINUTE)),
            Fact(("PaymentSettled", "PaymentFailed"), "finance",
                 stall_after_ms=env_ms("PARTNER_VISIT_SETTLEMENT_HOP4_STALL_AFTER", 30 * SECOND)),
            Fact(("SettlementConfirmed", "SettlementEscalated"), "platform-billing"),
        ),
        doc="What the home gym owes the partner gym for a visit; nobody owns the chain.",
    )
    return Catalog(
        transactions=(
            BusinessTransaction(BOOKING, orchestration=booking, downstream=downstream,
                                doc="A member books a class, at their home gym or a partner gym."),
            BusinessTransaction(SETTLEMENT, choreography=settlement,
                                doc="A partner visit is paid for between the two gyms."),
        ),
        observer="correlation",
    )


CATALOG = build()
