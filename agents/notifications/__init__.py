"""Notifications: listens to ReservationConfirmed; emits one NotificationSent per confirmed booking.

``OPENGYM_NOTIFICATIONS_PAUSED=1`` starts a worker that consumes nothing (the fault knob behind the
observer's DOWNSTREAM_NOT_STARTED): confirmations wait in Kafka until a worker without it runs.
Run: ``opengym worker notifications`` or ``faust -A agents.notifications worker -l info``.
"""

from __future__ import annotations

import logging
import os

import topics
from agents.notifications import logic
from streams.app import Runtime, correlates_by

rt = Runtime("notifications")
app = rt.app
PAUSED = os.environ.get("OPENGYM_NOTIFICATIONS_PAUSED", "") not in ("", "0", "false", "no")

sent = rt.table("notifications")


async def notify(event, message):
    if event.type_name != "ReservationConfirmed":
        return
    if await rt.step(sent, event.booking_id, event, logic.on_confirmed, now=rt.now()):
        rt.outcome("sent")


if PAUSED:
    logging.getLogger("opengym.app").warning("notifications: OPENGYM_NOTIFICATIONS_PAUSED is set, consuming nothing")
else:
    rt.agent(topics.RESERVATION_EVENTS, accepts={
        "ReservationConfirmed": correlates_by("booking_id"), "ReservationRejected": None, "ClassScheduled": None,
    })(notify)
