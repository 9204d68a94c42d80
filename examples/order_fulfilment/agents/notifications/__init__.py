"""Notifications: listens to OrderPlaced and to Shipping's LabelGenerated and ShipmentCancelled; emits
OrderConfirmationSent, ShipmentNotificationSent and CancellationNoticeSent. It only reacts.

Run: ``opengym --system order-fulfilment worker notifications``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.notifications import logic


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("notifications"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("notify", reads=(topics.ORDER_EVENTS, topics.SHIPPING_EVENTS), table="notices", handlers=logic.HANDLERS,
              outcomes={"OrderConfirmationSent": "confirmed", "ShipmentNotificationSent": "shipped",
                        "CancellationNoticeSent": "cancelled"}),
    ))


__getattr__ = module_app(build)
