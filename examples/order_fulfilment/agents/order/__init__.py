"""Order: listens to orders from the front end and to Payments' replies; emits OrderPlacementOrchestration's
terminal OrderPlaced | OrderRejected (and a release for a reservation that came too late).

``place`` (orders, keyed by order_id) runs the step table in :mod:`order_fulfilment.agents.order.placement`.
It never waits for the warehouse: what happens after OrderPlaced is other owners' business.

Run: ``opengym --system order-fulfilment worker order`` or ``faust -A order_fulfilment.agents.order worker``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.order import placement


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("order"), topics=topics.CATALOG, settings=settings,
                     clock=topics.ORDER_COMMANDS, agents=(
        Agent.orchestrating(placement.orchestration(), name="place", table="orders",
                            reads=(topics.ORDER_COMMANDS, topics.PAYMENTS_EVENTS)),
    ))


__getattr__ = module_app(build)
