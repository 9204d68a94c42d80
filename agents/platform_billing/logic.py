"""Platform Billing's rules: a partner visit creates an obligation between two gyms; the payment's
outcome confirms or escalates it.

The settlement is one step of a choreography nobody owns: Platform Billing reacts to Attendance's
fact and to Finance's facts, and drives nothing. Its events keep the visit's correlation id
(the booking id), so the whole chain of one visit is one key on every topic. State, one JSON record
per visit: ``{"settlement_id", "status": "OBLIGATED" | "CONFIRMED" | "ESCALATED"}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from streams.event import Event, Result
from streams.models import (AttendanceRecorded, EscalationReason, PaymentFailed, PaymentSettled,
                            SettlementConfirmed, SettlementEscalated, SettlementObligationCalculated)

OBLIGATED = "OBLIGATED"
CONFIRMED = "CONFIRMED"
ESCALATED = "ESCALATED"


@dataclass(frozen=True)
class SettlementConfig:
    visit_fee_cents: int = 1200
    currency: str = "EUR"

    @classmethod
    def from_env(cls) -> "SettlementConfig":
        return cls(visit_fee_cents=int(os.environ.get("OPENGYM_PARTNER_VISIT_FEE_CENTS") or 1200),
                   currency=os.environ.get("OPENGYM_CURRENCY") or "EUR")


def settlement_id_for(booking_id: str) -> str:
    return f"settlement-{booking_id}"


def on_attendance(state: dict | None, event: AttendanceRecorded, now: int, config: SettlementConfig) -> Result:
    if not event.partner_visit or state is not None:
        return state, []
    settlement_id = settlement_id_for(event.booking_id)
    obligation = SettlementObligationCalculated.new(
        caused_by=event, occurred_at=now, settlement_id=settlement_id, booking_id=event.booking_id,
        payer_gym_id=event.home_gym_id, payee_gym_id=event.gym_id, amount_cents=config.visit_fee_cents,
        currency=config.currency)
    return {"settlement_id": settlement_id, "status": OBLIGATED}, [obligation]


def on_settled(state: dict | None, event: PaymentSettled, now: int, config: SettlementConfig) -> Result:
    if state is None or state["status"] != OBLIGATED:
        return state, []
    confirmed = SettlementConfirmed.new(caused_by=event, occurred_at=now, settlement_id=event.settlement_id,
                                        payment_id=event.payment_id, amount_cents=event.amount_cents)
    return {**state, "status": CONFIRMED}, [confirmed]


def on_failed(state: dict | None, event: PaymentFailed, now: int, config: SettlementConfig) -> Result:
    if state is None or state["status"] != OBLIGATED:
        return state, []
    escalated = SettlementEscalated.new(caused_by=event, occurred_at=now, settlement_id=event.settlement_id,
                                        payment_id=event.payment_id, reason=EscalationReason.PAYMENT_FAILED)
    return {**state, "status": ESCALATED}, [escalated]


HANDLERS = {"AttendanceRecorded": on_attendance, "PaymentSettled": on_settled, "PaymentFailed": on_failed}


def on_event(state: dict | None, event: Event, *, now: int, config: SettlementConfig) -> Result:
    return HANDLERS[event.type_name](state, event, now, config)
