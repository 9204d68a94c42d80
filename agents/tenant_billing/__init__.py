"""Tenant Billing: listens to ReservationConfirmed; emits one BillingLineRecorded per confirmed booking.

Reservation does not know this component exists (a downstream process it owns alone).
Run: ``opengym worker tenant-billing`` or ``faust -A agents.tenant_billing worker -l info``.
"""

from __future__ import annotations

import topics
from agents.tenant_billing import logic
from streams.app import Runtime, correlates_by

rt = Runtime("tenant-billing")
app = rt.app
config = logic.BillingConfig.from_env()

lines = rt.table("billing-lines")


@rt.agent(topics.RESERVATION_EVENTS, accepts={
    "ReservationConfirmed": correlates_by("booking_id"), "ReservationRejected": None, "ClassScheduled": None})
async def record_billing_line(event, message):
    if event.type_name != "ReservationConfirmed":
        return  # rejections and schedules bill nothing
    if await rt.step(lines, event.booking_id, event, logic.on_confirmed, now=rt.now(), config=config):
        rt.outcome("billed")
