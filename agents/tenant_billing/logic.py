"""Tenant Billing's rule: one billing line per confirmed booking, however often the confirmation arrives.

State, one JSON record per booking (keyed by booking_id): ``{"line": <event_id of the line>}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from streams.event import Result
from streams.models import BillingLineRecorded, ReservationConfirmed


@dataclass(frozen=True)
class BillingConfig:
    price_cents: int = 1500
    currency: str = "EUR"

    @classmethod
    def from_env(cls) -> "BillingConfig":
        return cls(price_cents=int(os.environ.get("OPENGYM_CLASS_PRICE_CENTS") or 1500),
                   currency=os.environ.get("OPENGYM_CURRENCY") or "EUR")


def on_confirmed(state: dict | None, event: ReservationConfirmed, *, now: int, config: BillingConfig) -> Result:
    if state is not None and state.get("line"):
        return state, []  # billed already (a replayed confirmation with another event id)
    line = BillingLineRecorded.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                   member_id=event.member_id, gym_id=event.gym_id, home_gym_id=event.home_gym_id,
                                   amount_cents=config.price_cents, currency=config.currency)
    return {"line": line.event_id}, [line]
