"""Notifications' rule: one (simulated) confirmation per confirmed booking.

State, one JSON record per booking (keyed by booking_id): ``{"sent": <event_id of the notification>}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.event import Ignored, Result, ignore
from opengym.models import Channel, NotificationSent, ReservationConfirmed
from opengym_streams.settings import from_env, knob

TEMPLATE = "booking-confirmed"


@dataclass(frozen=True)
class NotificationsConfig:
    paused: bool = knob("OPENGYM_NOTIFICATIONS_PAUSED", False,
                        "`1`: the notifications worker consumes nothing (its messages wait in Kafka)")

    @classmethod
    def from_env(cls) -> "NotificationsConfig":
        return from_env(cls)


def on_confirmed(state: dict | None, event: ReservationConfirmed, now: int) -> Result | Ignored:
    if state is not None and state.get("sent"):
        return ignore("notified before")
    sent = NotificationSent.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                member_id=event.member_id, channel=Channel.EMAIL, template=TEMPLATE)
    return {"sent": sent.event_id}, [sent]
