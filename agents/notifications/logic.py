"""Notifications' rule: one (simulated) confirmation per confirmed booking.

State, one JSON record per booking (keyed by booking_id): ``{"sent": <event_id of the notification>}``.
"""

from __future__ import annotations

from streams.event import Result
from streams.models import Channel, NotificationSent, ReservationConfirmed

TEMPLATE = "booking-confirmed"


def on_confirmed(state: dict | None, event: ReservationConfirmed, *, now: int) -> Result:
    if state is not None and state.get("sent"):
        return state, []
    sent = NotificationSent.new(caused_by=event, occurred_at=now, booking_id=event.booking_id,
                                member_id=event.member_id, channel=Channel.EMAIL, template=TEMPLATE)
    return {"sent": sent.event_id}, [sent]
