"""Platform Billing: listens to AttendanceRecorded (partner visits) and to Finance's payment outcomes;
emits SettlementObligationCalculated, then SettlementConfirmed | SettlementEscalated.

Run: ``opengym worker platform-billing`` or ``faust -A agents.platform_billing worker -l info``.
"""

from __future__ import annotations

import topics
from agents.platform_billing import logic
from streams.app import Runtime, non_empty

rt = Runtime("platform-billing")
app = rt.app
config = logic.SettlementConfig.from_env()

settlements = rt.table("settlements")


def partner_visit_has_gyms(event) -> str | None:
    if event.partner_visit and not (event.gym_id and event.home_gym_id):
        return "a partner visit needs gym_id and home_gym_id"
    return None


@rt.agent(topics.ATTENDANCE_EVENTS, topics.FINANCE_EVENTS, accepts={
    "AttendanceRecorded": partner_visit_has_gyms, "AttendancePending": None, "CheckInRejected": None,
    "PaymentInitiated": None, "PaymentSettled": non_empty("settlement_id", "payment_id"),
    "PaymentFailed": non_empty("settlement_id", "payment_id"),
})
async def settle(event, message):
    if event.type_name not in logic.HANDLERS:
        return
    for out in await rt.step(settlements, event.correlation_id, event, logic.on_event, now=rt.now(), config=config):
        rt.outcome({"SettlementObligationCalculated": "obligation", "SettlementConfirmed": "confirmed",
                    "SettlementEscalated": "escalated"}[out.type_name])
