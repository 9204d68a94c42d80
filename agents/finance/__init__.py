"""Finance: listens to SettlementObligationCalculated; emits PaymentInitiated, then PaymentSettled |
PaymentFailed from a simulated gateway (``OPENGYM_PAYMENT_FAILURE_RATE``, default 0).

Run: ``opengym worker finance`` or ``faust -A agents.finance worker -l info``.
"""

from __future__ import annotations

import topics
from agents.finance import logic
from streams.app import Runtime, all_of, non_empty, positive

rt = Runtime("finance")
app = rt.app
config = logic.GatewayConfig.from_env()

payments = rt.table("payments")


@rt.agent(topics.PLATFORM_BILLING_EVENTS, accepts={
    "SettlementObligationCalculated": all_of(non_empty("settlement_id", "payer_gym_id", "payee_gym_id"),
                                             positive("amount_cents")),
    "SettlementConfirmed": None, "SettlementEscalated": None,
})
async def pay(event, message):
    if event.type_name != "SettlementObligationCalculated":
        return
    for out in await rt.step(payments, event.correlation_id, event, logic.on_obligation, now=rt.now(), config=config):
        if out.type_name != "PaymentInitiated":
            rt.outcome("settled" if out.type_name == "PaymentSettled" else "failed")
