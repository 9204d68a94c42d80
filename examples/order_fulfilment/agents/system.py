"""Order fulfilment, declared: its components (the registry) and the business transactions they take part in
(the process catalog). With the topic catalog in ``topics/`` and the contracts in ``schemas/``, this is the
whole system; ``SYSTEM`` is what the library's commands, workers, demo and observer are handed.

The levels, as the ownership test decides them:

- **Customer Places an Order**: Order owns it (OrderPlacementOrchestration, Payments a participant). Its
  terminal OrderPlaced triggers a confirmation that Notifications owns.
- **Order Fulfilment**: nobody owns the way from OrderPlaced to the customer's parcel; it is a choreography
  (OrderDelivery): Warehouse reacts to OrderPlaced, Shipping to the warehouse's outcome, Notifications to
  Shipping's. Warehouse takes part in it while it orchestrates inside (PickingOrchestration, Pickers a
  participant): the level problem, each level with its own owner. Shipping's LabelGeneration and Payments'
  refund are downstream of the picking's terminal events.

Every duration of the catalog can be overridden by environment, ``OPENGYM_<PROCESS>_<WHAT>_MS``; the step
tables' deadlines are their own knobs (``OPENGYM_ORDER_PAYMENT_TIMEOUT_MS``,
``OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS``, ...; docs/settings.md beside the catalog lists them all).
"""

from __future__ import annotations

from pathlib import Path

from opengym_streams.catalog import BusinessTransaction, Catalog, Choreography, DownstreamProcess, Fact
from opengym_streams.settings import env_ms, env_name
from opengym_streams.system import ComponentSpec, System
from order_fulfilment import topics
from order_fulfilment.agents.order import placement
from order_fulfilment.agents.warehouse import picking

SECOND = 1000
MINUTE = 60 * SECOND

PLACEMENT = "Customer Places an Order"
FULFILMENT = "Order Fulfilment"

COMPONENTS = (
    ComponentSpec("order", "order_fulfilment.agents.order", 9201, doc="Owns OrderPlacementOrchestration."),
    ComponentSpec("payments", "order_fulfilment.agents.payments", 9202,
                  doc="Reserves, releases and refunds the order's amount."),
    ComponentSpec("warehouse", "order_fulfilment.agents.warehouse", 9203,
                  doc="Owns PickingOrchestration and the stock of every article."),
    ComponentSpec("pickers", "order_fulfilment.agents.pickers", 9204, doc="The pickers' handhelds: assign, pick, put back."),
    ComponentSpec("shipping", "order_fulfilment.agents.shipping", 9205, doc="Owns LabelGeneration."),
    ComponentSpec("notifications", "order_fulfilment.agents.notifications", 9206, doc="Tells the customer; only reacts."),
    ComponentSpec("correlation", "order_fulfilment.agents.correlation", 9207, observer=True,
                  doc="The observer: joins, times and reports; never drives."),
)


def downstream(name: str, owner: str, trigger: str, start: str, completion: str, start_within_ms: int,
               complete_within_ms: int, doc: str) -> DownstreamProcess:
    knob = env_name(name)
    return DownstreamProcess(
        name, owner=owner, trigger=trigger, start=start, completion=completion,
        start_within_ms=env_ms(f"{knob}_START_WITHIN", start_within_ms, f"{name} must start within"),
        complete_within_ms=env_ms(f"{knob}_COMPLETE_WITHIN", complete_within_ms, f"{name} must complete within"),
        doc=doc)


def processes() -> Catalog:
    delivery = Choreography(
        "OrderDelivery",
        facts=(
            Fact(("OrderPlaced",), "order", stall_after_ms=env_ms("ORDER_DELIVERY_HOP1_STALL_AFTER", 1 * MINUTE)),
            Fact(("OrderPicked", "OrderUnfulfillable"), "warehouse",
                 stall_after_ms=env_ms("ORDER_DELIVERY_HOP2_STALL_AFTER", 30 * SECOND)),
            Fact(("LabelGenerated", "ShipmentCancelled"), "shipping",
                 stall_after_ms=env_ms("ORDER_DELIVERY_HOP3_STALL_AFTER", 30 * SECOND)),
            Fact(("ShipmentNotificationSent", "CancellationNoticeSent"), "notifications"),
        ),
        doc="From a placed order to what the customer hears about the parcel: each owner reacts to the "
            "previous one's fact; nobody drives the chain.",
    )
    return Catalog(
        transactions=(
            BusinessTransaction(PLACEMENT, orchestration=placement.orchestration(), downstream=(
                downstream("OrderConfirmationProcess", "notifications", "OrderPlaced", "OrderConfirmationSent",
                           "OrderConfirmationSent", 30 * SECOND, 30 * SECOND,
                           "Notifications tells the customer the order stands (no orchestration)."),
            ), doc="A customer orders an article; the order stands once its amount is reserved."),
            BusinessTransaction(FULFILMENT, orchestration=picking.orchestration(), downstream=(
                downstream("LabelGeneration", "shipping", "OrderPicked", "ShipmentCreated", "LabelGenerated",
                           30 * SECOND, 1 * MINUTE, "Shipping opens a shipment and prints the carrier's label."),
                downstream("RefundProcess", "payments", "OrderUnfulfillable", "PaymentRefunded", "PaymentRefunded",
                           30 * SECOND, 30 * SECOND, "Payments gives back the amount of an order that cannot ship."),
            ), choreography=delivery,
                doc="The placed order travels through the warehouse and shipping to the customer."),
        ),
        observer="correlation",
    )


def knobs() -> tuple[type, ...]:
    """The knob dataclasses of the system's components (the library's own are in streams.settings)."""
    from order_fulfilment.agents.payments.logic import PaymentsConfig
    from order_fulfilment.agents.pickers.logic import PickersConfig
    from order_fulfilment.agents.shipping.logic import ShippingConfig

    return placement.PlacementConfig, picking.PickingConfig, PaymentsConfig, PickersConfig, ShippingConfig


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SYSTEM = System("order-fulfilment", topics.CATALOG, COMPONENTS, processes, knobs=knobs, namespace="shop",
                schemas=ROOT / "schemas", models=ROOT / "models.py", docs=ROOT / "docs",
                demo="order_fulfilment.demo", title="Order fulfilment", correlation_fields=("order_id", "sku"),
                doc="A shop: orders placed, picked in the warehouse, shipped, and the customer told.")
