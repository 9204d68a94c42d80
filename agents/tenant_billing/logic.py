"""Tenant Billing's rule: one billing line per confirmed booking, however often the confirmation arrives.

State, one JSON record per booking (keyed by booking_id): ``{"line": <event_id of the line>}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.event import Ignored, Result, ignore
from opengym.models import BillingLineRecorded, ReservationConfirmed
from opengym_streams.settings import from_env, knob


@dataclass(frozen=True)
class BillingConfig:
    price_cents: int = knob("OPENGYM_CLASS_PRICE_CENTS", 1500, "what a class costs the member's gym")
    currency: str = knob("OPENGYM_CURRENCY", "EUR", "currency of billing lines and settlements")

    @classmethod
    def from_env(cls) -> "BillingConfig":
        return from_env(cls)


def on_confirmed(state: dict | None, event: ReservationConfirmed, now: int, config: BillingConfig) -> Result | Ignored:
    if state is not None and state.get("line"):
        return ignore("billed before")  # a replayed confirmation with another event id
    line = BillingLineRecorded.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                   member_id=event.member_id, gym_id=event.gym_id, home_gym_id=event.home_gym_id,
                                   amount_cents=config.price_cents, currency=config.currency)
    return {"line": line.event_id}, [line]
