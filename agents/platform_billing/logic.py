"""Platform Billing's rules: a partner visit creates an obligation between two gyms; the payment's
outcome confirms or escalates it.

The settlement is one step of a choreography nobody owns: Platform Billing reacts to Attendance's
fact and to Finance's facts, and drives nothing. Its events keep the visit's correlation id
(the booking id), so the whole chain of one visit is one key on every topic. State, one JSON record
per visit: ``{"settlement_id", "status": "OBLIGATED" | "CONFIRMED" | "ESCALATED"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from opengym_streams.event import Handler, Ignored, Result, ignore, not_yet
from opengym.models import (AttendanceRecorded, EscalationReason, PaymentFailed, PaymentSettled,
                            SettlementConfirmed, SettlementEscalated, SettlementObligationCalculated)
from opengym_streams.settings import from_env, knob

OBLIGATED = "OBLIGATED"
CONFIRMED = "CONFIRMED"
ESCALATED = "ESCALATED"


@dataclass(frozen=True)
class SettlementConfig:
    visit_fee_cents: int = knob("OPENGYM_PARTNER_VISIT_FEE_CENTS", 1200, "what a partner visit costs the home gym")
    currency: str = knob("OPENGYM_CURRENCY", "EUR", "currency of billing lines and settlements")

    @classmethod
    def from_env(cls) -> "SettlementConfig":
        return from_env(cls)


def settlement_id_for(booking_id: str) -> str:
    return f"settlement-{booking_id}"


def on_attendance(state: dict | None, event: AttendanceRecorded, now: int, config: SettlementConfig) -> Result | Ignored:
    if not event.partner_visit:
        return ignore("a visit at the member's home gym settles nothing")
    if state is not None:
        return ignore("obligation calculated before")
    settlement_id = settlement_id_for(event.booking_id)
    obligation = SettlementObligationCalculated.new(
        caused_by=event, occurred_at=now, settlement_id=settlement_id, booking_id=event.booking_id,
        payer_gym_id=event.home_gym_id, payee_gym_id=event.gym_id, amount_cents=config.visit_fee_cents,
        currency=config.currency)
    return {"settlement_id": settlement_id, "status": OBLIGATED}, [obligation]


def on_settled(state: dict | None, event: PaymentSettled, now: int) -> Result | Ignored:
    if state is None:  # a replay may read the payment before the visit that obliges it
        return not_yet("no obligation for this settlement")
    if state["status"] != OBLIGATED:
        return ignore("settlement ended before")
    confirmed = SettlementConfirmed.new(caused_by=event, occurred_at=now, settlement_id=event.settlement_id,
                                        payment_id=event.payment_id, amount_cents=event.amount_cents)
    return {**state, "status": CONFIRMED}, [confirmed]


def on_failed(state: dict | None, event: PaymentFailed, now: int) -> Result | Ignored:
    if state is None:  # a replay may read the payment before the visit that obliges it
        return not_yet("no obligation for this settlement")
    if state["status"] != OBLIGATED:
        return ignore("settlement ended before")
    escalated = SettlementEscalated.new(caused_by=event, occurred_at=now, settlement_id=event.settlement_id,
                                        payment_id=event.payment_id, reason=EscalationReason.PAYMENT_FAILED)
    return {**state, "status": ESCALATED}, [escalated]


def handlers(config: SettlementConfig) -> dict[str, Handler]:
    return {"AttendanceRecorded": partial(on_attendance, config=config), "PaymentSettled": on_settled,
            "PaymentFailed": on_failed}
