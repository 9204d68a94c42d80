"""What the customer is told, once per kind of news per order: the order stands (OrderPlaced), the parcel
is on its way (LabelGenerated), the order cannot be fulfilled (ShipmentCancelled). One record per order:
``{"sent": [kinds]}``. Notifications only reacts: it orchestrates nothing and nobody waits for it."""

from __future__ import annotations

from opengym_streams.event import Event, Ignored, Result, ignore
from order_fulfilment.models import (CancellationNoticeSent, LabelGenerated, OrderConfirmationSent, OrderPlaced,
                                     ShipmentCancelled, ShipmentNotificationSent)


def _once(state: dict | None, kind: str, notice: Event) -> Result | Ignored:
    sent = (state or {}).get("sent", [])
    if kind in sent:
        return ignore(f"{kind} sent before")
    return {"sent": [*sent, kind]}, [notice]


def confirm(state: dict | None, event: OrderPlaced, now: int) -> Result | Ignored:
    return _once(state, "confirmation", OrderConfirmationSent.new(
        caused_by=event, occurred_at=now, order_id=event.order_id, customer_id=event.customer_id,
        template="order-confirmed"))


def on_its_way(state: dict | None, event: LabelGenerated, now: int) -> Result | Ignored:
    return _once(state, "shipment", ShipmentNotificationSent.new(
        caused_by=event, occurred_at=now, order_id=event.order_id, customer_id=event.customer_id,
        tracking_number=event.tracking_number))


def sorry(state: dict | None, event: ShipmentCancelled, now: int) -> Result | Ignored:
    return _once(state, "cancellation", CancellationNoticeSent.new(
        caused_by=event, occurred_at=now, order_id=event.order_id, customer_id=event.customer_id))


HANDLERS = {"OrderPlaced": confirm, "LabelGenerated": on_its_way, "ShipmentCancelled": sorry}
