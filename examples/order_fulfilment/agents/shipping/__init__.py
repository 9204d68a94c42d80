"""Shipping: listens to the warehouse's OrderPicked and OrderUnfulfillable; emits ShipmentCreated and
LabelGenerated (LabelGeneration, which it owns), or ShipmentCancelled. It reacts; nobody commands it.

Run: ``opengym --system order-fulfilment worker shipping``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.shipping import logic


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("shipping"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("ship", reads=(topics.WAREHOUSE_EVENTS,), table="shipments",
              handlers=logic.handlers(logic.ShippingConfig.from_env()),
              outcomes={"LabelGenerated": "labelled", "ShipmentCancelled": "cancelled"}),
    ))


__getattr__ = module_app(build)
