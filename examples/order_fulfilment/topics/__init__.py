"""The one topic catalog of order fulfilment: every topic declared once, with its owner, key, events and
partitions, and the contract checks of the events they carry.

Names are ``shop.<owner>.<kind>``; records are ``shop.<owner>.<Event>``. Every record of one order is keyed
by its order_id (the correlation id), except the stock keeper's internal topic, keyed by sku, and goods
received, whose transaction is the sku. Every component that owns a topic gets ``shop.<component>.dlq`` and
``shop.<component>.redrives``; its Faust app (consumer group, changelogs) is ``shop-<component>``.
"""

from __future__ import annotations

from opengym_streams.checks import all_of, correlates_by, non_empty, positive
from opengym_streams.topic import ANOMALY, CLOCK, EXTERNAL, Topic, TopicCatalog

PARTITIONS = 4
"""Every topic has this many partitions, and so do the components' table changelogs."""


def _ev(owner: str, *names: str) -> tuple[str, ...]:
    return tuple(f"shop.{owner}.{n}" for n in names)


ORDER_COMMANDS = Topic(
    "shop.order.commands", "order", _ev("order", "PlaceOrderRequested") + (CLOCK,), kind="commands",
    producers=(EXTERNAL, "order"), doc="Orders from the shop's front end, plus Order's own clock ticks.",
)
ORDER_EVENTS = Topic(
    "shop.order.events", "order", _ev("order", "OrderPlaced", "OrderRejected"), kind="events",
    doc="OrderPlacementOrchestration's terminal events. OrderPlaced starts the warehouse's picking.",
)
PAYMENTS_REQUESTS = Topic(
    "shop.payments.requests", "payments", _ev("payments", "PaymentReservationRequested", "PaymentReleaseRequested"),
    kind="requests", producers=("order",), doc="Order's reservation and release requests (nested process).",
)
PAYMENTS_EVENTS = Topic(
    "shop.payments.events", "payments",
    _ev("payments", "PaymentReserved", "PaymentDeclined", "PaymentReleased", "PaymentRefunded"), kind="events",
    doc="Payments' replies, and the refunds of orders the warehouse could not fulfil.",
)
WAREHOUSE_COMMANDS = Topic(
    "shop.warehouse.commands", "warehouse", _ev("warehouse", "ReceiveStockRequested") + (CLOCK,), kind="commands",
    producers=(EXTERNAL, "warehouse"), doc="Goods in (keyed by sku), plus the warehouse's own clock ticks.",
)
WAREHOUSE_EVENTS = Topic(
    "shop.warehouse.events", "warehouse", _ev("warehouse", "StockReceived", "OrderPicked", "OrderUnfulfillable"),
    kind="events", doc="Stock received, and PickingOrchestration's terminal events.",
)
PICKERS_REQUESTS = Topic(
    "shop.pickers.requests", "pickers",
    _ev("pickers", "PickerAssignmentRequested", "PickRequested", "PickReturnRequested"), kind="requests",
    producers=("warehouse",), doc="The warehouse's requests to the pickers' handhelds (nested processes).",
)
PICKERS_EVENTS = Topic(
    "shop.pickers.events", "pickers",
    _ev("pickers", "PickerAssigned", "NoPickerAvailable", "PickConfirmed", "PickFailed", "PickReturned"),
    kind="events", doc="The pickers' replies.",
)
PICKERS_CLOCK = Topic(
    "shop.pickers.clock", "pickers", (CLOCK,), kind="clock",
    doc="The pickers' clock ticks: a pick takes time, held in state until a tick says it is done.",
)
SHIPPING_EVENTS = Topic(
    "shop.shipping.events", "shipping", _ev("shipping", "ShipmentCreated", "LabelGenerated", "ShipmentCancelled"),
    kind="events", doc="Shipments, their labels, and the orders that will not ship.",
)
NOTIFICATIONS_EVENTS = Topic(
    "shop.notifications.events", "notifications",
    _ev("notifications", "OrderConfirmationSent", "ShipmentNotificationSent", "CancellationNoticeSent"),
    kind="events", doc="What the customer was told.",
)
CORRELATION_ANOMALIES = Topic(
    "shop.correlation.anomalies", "correlation", (ANOMALY,), kind="anomalies",
    doc="What the observer saw go wrong. The observer publishes here and nowhere else (besides its DLQ).",
)
CORRELATION_CLOCK = Topic(
    "shop.correlation.clock", "correlation", (CLOCK,), kind="clock", doc="The observer's own clock ticks.",
)
WAREHOUSE_STOCK = Topic(
    "shop.warehouse.stock", "warehouse",
    _ev("warehouse", "ReceiveStockRequested", "StockReservationRequested", "StockReleaseRequested"),
    kind="internal", key="sku",
    doc="Internal: the picking orchestration repartitions stock requests by sku, so one article's stock is "
        "decided in one place and never oversold.",
)
WAREHOUSE_STOCK_REPLIES = Topic(
    "shop.warehouse.stock-replies", "warehouse", _ev("warehouse", "StockReserved", "StockShort"), kind="internal",
    doc="Internal: the stock keeper's answers, back by order_id to PickingOrchestration.",
)

CHECKS = {
    "PlaceOrderRequested": all_of(correlates_by("order_id"), non_empty("customer_id", "sku"), positive("quantity"),
                                  positive("amount_cents")),
    "ReceiveStockRequested": all_of(correlates_by("sku"), non_empty("bin"), positive("quantity")),
    "PaymentReservationRequested": all_of(correlates_by("order_id"), positive("amount_cents")),
    "PaymentReleaseRequested": all_of(correlates_by("order_id"), non_empty("payment_id")),
    "PaymentReserved": correlates_by("order_id"),
    "PaymentDeclined": correlates_by("order_id"),
    "OrderPlaced": correlates_by("order_id"),
    "OrderPicked": correlates_by("order_id"),
    "OrderUnfulfillable": correlates_by("order_id"),
    "StockReservationRequested": all_of(non_empty("order_id", "sku"), positive("quantity")),
    "StockReleaseRequested": non_empty("order_id", "sku"),
    "StockReserved": correlates_by("order_id"),
    "StockShort": correlates_by("order_id"),
    "PickerAssignmentRequested": correlates_by("order_id"),
    "PickRequested": all_of(correlates_by("order_id"), non_empty("picker_id")),
    "PickReturnRequested": all_of(correlates_by("order_id"), non_empty("picker_id")),
    "PickerAssigned": correlates_by("order_id"),
    "PickConfirmed": correlates_by("order_id"),
    "PickFailed": correlates_by("order_id"),
    "LabelGenerated": correlates_by("order_id"),
}
"""Each event's contract beyond its schema, checked by the runtime wherever the event is read."""

CATALOG = TopicCatalog(
    (ORDER_COMMANDS, ORDER_EVENTS, PAYMENTS_REQUESTS, PAYMENTS_EVENTS, WAREHOUSE_COMMANDS, WAREHOUSE_EVENTS,
     PICKERS_REQUESTS, PICKERS_EVENTS, PICKERS_CLOCK, SHIPPING_EVENTS, NOTIFICATIONS_EVENTS, CORRELATION_ANOMALIES,
     CORRELATION_CLOCK, WAREHOUSE_STOCK, WAREHOUSE_STOCK_REPLIES),
    dead_letter_name="shop.{component}.dlq", redrive_name="shop.{component}.redrives", partitions=PARTITIONS,
    checks=CHECKS, app_name="shop-{component}")
