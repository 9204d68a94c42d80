"""OpenGym, declared: its components (the registry) and the business transactions they take part in (the
process catalog). With the topic catalog in ``topics/`` and the contracts in ``schemas/``, this is the
whole system; ``SYSTEM`` is what the library's commands, workers, demo and observer are handed.

Every duration of the catalog can be overridden by environment, ``OPENGYM_<PROCESS>_<WHAT>_MS`` (for
example ``OPENGYM_NOTIFICATION_PROCESS_START_WITHIN_MS=2000``); :func:`processes` reads them when called.
BookingOrchestration's deadlines are its own knobs (``OPENGYM_BOOKING_TIMEOUT_MS``, ...), read where the
step table is built, the one place they are stated.
"""

from __future__ import annotations

from pathlib import Path

import opengym
import opengym.schemas
from opengym import topics
from opengym.agents.reservation import booking
from opengym_streams.catalog import BusinessTransaction, Catalog, Choreography, DownstreamProcess, Fact
from opengym_streams.settings import env_ms, env_name
from opengym_streams.system import ComponentSpec, System

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

BOOKING = "Member Books a Class"
SETTLEMENT = "Partner Visit Settlement"

COMPONENTS = (
    ComponentSpec("reservation", "opengym.agents.reservation", 9101, doc="Owns BookingOrchestration and class capacity."),
    ComponentSpec("entitlement", "opengym.agents.entitlement", 9102, doc="Memberships and class packs; answers consume "
                  "and release requests."),
    ComponentSpec("tenant-billing", "opengym.agents.tenant_billing", 9103, doc="A billing line per confirmed booking."),
    ComponentSpec("attendance", "opengym.agents.attendance", 9104, doc="Pending attendance per confirmed booking; check-ins."),
    ComponentSpec("notifications", "opengym.agents.notifications", 9105, doc="A confirmation to the member."),
    ComponentSpec("platform-billing", "opengym.agents.platform_billing", 9106, doc="What gyms owe each other."),
    ComponentSpec("finance", "opengym.agents.finance", 9107, doc="Payments between gyms."),
    ComponentSpec("correlation", "opengym.agents.correlation", 9108, observer=True,
                  doc="The observer: joins, times and reports; never drives."),
)


def downstream(name: str, owner: str, start: str, completion: str, start_within_ms: int, complete_within_ms: int,
               doc: str) -> DownstreamProcess:
    """A process triggered by ReservationConfirmed, owned by the component that reacts."""
    knob = env_name(name)
    return DownstreamProcess(
        name, owner=owner, trigger="ReservationConfirmed", start=start, completion=completion,
        start_within_ms=env_ms(f"{knob}_START_WITHIN", start_within_ms, f"{name} must start within"),
        complete_within_ms=env_ms(f"{knob}_COMPLETE_WITHIN", complete_within_ms, f"{name} must complete within"),
        doc=doc)


def processes() -> Catalog:
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
            BusinessTransaction(BOOKING, orchestration=booking.orchestration(), downstream=(
                downstream("BillingRecordProcess", "tenant-billing", "BillingLineRecorded", "BillingLineRecorded",
                           30 * SECOND, 30 * SECOND, "The member's gym records a billing line for the confirmed booking."),
                downstream("AttendancePendingProcess", "attendance", "AttendancePending", "AttendanceRecorded",
                           30 * SECOND, 24 * HOUR, "Attendance expects the member; a check-in records the attendance."),
                downstream("NotificationProcess", "notifications", "NotificationSent", "NotificationSent",
                           30 * SECOND, 30 * SECOND, "Notifications reacts with a confirmation to the member (no "
                           "orchestration)."),
            ), doc="A member books a class, at their home gym or a partner gym."),
            BusinessTransaction(SETTLEMENT, choreography=settlement,
                                doc="A partner visit is paid for between the two gyms."),
        ),
        observer="correlation",
    )


def knobs() -> tuple[type, ...]:
    """The knob dataclasses of OpenGym's components (the library's own are in streams.settings)."""
    from opengym.agents.entitlement.logic import EntitlementConfig
    from opengym.agents.finance.logic import GatewayConfig
    from opengym.agents.notifications.logic import NotificationsConfig
    from opengym.agents.platform_billing.logic import SettlementConfig
    from opengym.agents.tenant_billing.logic import BillingConfig

    return booking.BookingConfig, EntitlementConfig, BillingConfig, SettlementConfig, GatewayConfig, NotificationsConfig


PACKAGE = Path(opengym.__file__).resolve().parent
"""The ``opengym`` package: ``opengym/`` in the repository; installed, beside ``opengym/agents`` and the rest."""


def _runbook() -> Path:
    # The repository keeps it as docs/runbook.md; the wheel ships that file as opengym/docs/runbook.md.
    shipped = PACKAGE / "docs" / "runbook.md"
    return shipped if shipped.is_file() else Path(__file__).resolve().parents[1] / "docs" / "runbook.md"


def _docs() -> Path | None:
    # The repository's docs/ in a checkout; installed, none (the generators then write to ./docs, never
    # into site-packages).
    from opengym_streams.settings import CHECKOUT

    return CHECKOUT / "docs" if CHECKOUT is not None else None


SYSTEM = System("opengym", topics.CATALOG, COMPONENTS, processes, knobs=knobs, namespace="opengym",
                schemas=Path(opengym.schemas.__file__).resolve().parent, models=PACKAGE / "models.py",
                docs=_docs(), demo="opengym.demo", title="OpenGym",
                correlation_fields=("booking_id", "settlement_id", "class_id", "instrument_id", "payment_id"),
                runbook=_runbook(), doc="A fitness platform whose members book classes at partner gyms.")
