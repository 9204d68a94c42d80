"""Finance's rules: pay a settlement obligation through a simulated gateway.

The gateway's answer is deterministic per payment id (a hash against
``OPENGYM_PAYMENT_FAILURE_RATE``), so reruns of the same workload agree. State, one JSON record per
visit (the correlation id): ``{"payment_id", "status": "SETTLED" | "FAILED"}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.event import Event, Ignored, Result, ignore, share_of
from opengym.models import (PaymentFailed, PaymentFailureReason, PaymentInitiated, PaymentSettled,
                            SettlementObligationCalculated)
from opengym_streams.settings import from_env, knob


@dataclass(frozen=True)
class GatewayConfig:
    failure_rate: float = knob("OPENGYM_PAYMENT_FAILURE_RATE", 0.0,
                               "share of payments the gateway fails, by a hash of the payment id (reruns agree)")

    @classmethod
    def from_env(cls) -> "GatewayConfig":
        return from_env(cls)

    def fails(self, payment_id: str) -> bool:
        return share_of(payment_id, "payment-gateway") < self.failure_rate


def payment_id_for(settlement_id: str) -> str:
    return f"payment-{settlement_id}"


def on_obligation(state: dict | None, event: SettlementObligationCalculated, now: int,
                  config: GatewayConfig) -> Result | Ignored:
    if state is not None:
        return ignore("paid (or failed) before")
    payment_id = payment_id_for(event.settlement_id)
    initiated = PaymentInitiated.new(caused_by=event, occurred_at=now, payment_id=payment_id,
                                     settlement_id=event.settlement_id, payer_gym_id=event.payer_gym_id,
                                     payee_gym_id=event.payee_gym_id, amount_cents=event.amount_cents,
                                     currency=event.currency)
    if config.fails(payment_id):
        outcome: Event = PaymentFailed.new(caused_by=initiated, occurred_at=now, payment_id=payment_id,
                                           settlement_id=event.settlement_id, reason=PaymentFailureReason.DECLINED)
        status = "FAILED"
    else:
        outcome = PaymentSettled.new(caused_by=initiated, occurred_at=now, payment_id=payment_id,
                                     settlement_id=event.settlement_id, amount_cents=event.amount_cents)
        status = "SETTLED"
    return {"payment_id": payment_id, "status": status}, [initiated, outcome]
