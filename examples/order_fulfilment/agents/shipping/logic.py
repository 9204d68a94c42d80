"""Shipping's rules: a shipment and its label for each picked order (LabelGeneration, downstream of
PickingOrchestration), a cancelled shipment for each order the warehouse could not fulfil. One record per
order: ``{"shipment_id", "label": tracking number | None, "cancelled": bool}``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from opengym_streams.event import Handler, Ignored, Result, ignore, share_of
from opengym_streams.settings import from_env, knob
from order_fulfilment.models import LabelGenerated, OrderPicked, OrderUnfulfillable, ShipmentCancelled, ShipmentCreated


@dataclass(frozen=True)
class ShippingConfig:
    carrier: str = knob("OPENGYM_SHIPPING_CARRIER", "parcelco", "the carrier whose labels Shipping prints")
    stuck_share: float = knob("OPENGYM_SHIPPING_STUCK_SHARE", 0.0,
                              "share (0..1) of shipments whose label the carrier never returns, by order id")

    @classmethod
    def from_env(cls) -> "ShippingConfig":
        return from_env(cls)


def ship(state: dict | None, event: OrderPicked, now: int, config: ShippingConfig) -> Result | Ignored:
    if state is not None:
        return ignore("shipped before" if not state.get("cancelled") else "cancelled before")
    shipment_id = f"ship-{event.order_id}"
    created = ShipmentCreated.new(caused_by=event, occurred_at=now, order_id=event.order_id, shipment_id=shipment_id,
                                  customer_id=event.customer_id)
    if share_of(event.order_id, "shipping-stuck") < config.stuck_share:
        return {"shipment_id": shipment_id, "label": None, "cancelled": False}, [created]
    # Derived from the shipment, never random: a replay must print the same label.
    tracking = f"{config.carrier.upper()}-{int(share_of(shipment_id, 'tracking') * 10**9):09d}"
    label = LabelGenerated.new(caused_by=created, occurred_at=now, order_id=event.order_id, shipment_id=shipment_id,
                               customer_id=event.customer_id, tracking_number=tracking, carrier=config.carrier)
    return {"shipment_id": shipment_id, "label": tracking, "cancelled": False}, [created, label]


def cancel(state: dict | None, event: OrderUnfulfillable, now: int) -> Result | Ignored:
    if state is not None:
        return ignore("cancelled before" if state.get("cancelled") else "shipped already")
    return ({"shipment_id": None, "label": None, "cancelled": True},
            [ShipmentCancelled.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                   customer_id=event.customer_id)])


def handlers(config: ShippingConfig) -> dict[str, Handler]:
    return {"OrderPicked": partial(ship, config=config), "OrderUnfulfillable": cancel}
