"""Warehouse: listens to OrderPlaced (it takes part in the choreography by reacting to Order's fact), to
goods in, to the stock keeper's and the pickers' replies; emits StockReceived and PickingOrchestration's
terminal OrderPicked | OrderUnfulfillable. Inside, it orchestrates: the "level problem" of the design.

- ``pick`` (picks, keyed by order_id) runs the step table in :mod:`order_fulfilment.agents.warehouse.picking`
  and forwards goods in (``ReceiveStockRequested``) to the stock keeper unchanged.
- ``keep_stock`` (articles, keyed by sku) reads ``shop.warehouse.stock``: see
  :mod:`order_fulfilment.agents.warehouse.stock`.

Run: ``opengym --system order-fulfilment worker warehouse``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.warehouse import picking, stock


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("warehouse"), topics=topics.CATALOG, settings=settings,
                     clock=topics.WAREHOUSE_COMMANDS, agents=(
        Agent.orchestrating(picking.orchestration(), name="pick", table="picks",
                            reads=(topics.ORDER_EVENTS, topics.WAREHOUSE_COMMANDS, topics.WAREHOUSE_STOCK_REPLIES,
                                   topics.PICKERS_EVENTS),
                            forward={"ReceiveStockRequested": topics.WAREHOUSE_STOCK}),
        Agent("keep_stock", reads=(topics.WAREHOUSE_STOCK,), table="articles", handlers=stock.HANDLERS, reanswer=True),
    ))


__getattr__ = module_app(build)
