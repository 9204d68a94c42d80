"""The order demo's invariants: what every run must hold, as a list of violations (empty when all hold).

- every order ends in exactly one placement terminal event (OrderPlaced | OrderRejected);
- every placed order is picked or unfulfillable exactly once, and a rejected order never reaches the
  warehouse;
- what the catalog's downstream processes owe each terminal event (a confirmation per placed order, a
  shipment per picked one, a refund per unfulfillable one) happens exactly once, and never otherwise;
- no label without a pick, at most one per order; a cancelled shipment exactly for the orders that will
  not ship; the customer told once of each;
- nobody pays for an order that did not ship: a placed order's amount is reserved once, and given back
  (refund) exactly when it is unfulfillable; a reservation that came after the order gave up is released;
- no article sold twice: the units picked of an article never exceed the units received;
- a pick confirmed after the warehouse gave up is put back, once;
- no event id published twice with different contents.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from opengym_streams.demo.invariants import at_most_one, conflicting_copies, downstream_owed, exactly_one, none_of
from order_fulfilment.agents.system import SYSTEM
from order_fulfilment.demo.facts import PICKING_TERMINALS, PLACEMENT_TERMINALS, OrderFacts


@dataclass(frozen=True)
class Expectations:
    labels: bool = True
    """Every picked order gets its label (False: the stuck-label knob leaves some without)."""


def check_invariants(facts: OrderFacts, order_ids: Iterable[str] | None = None,
                     expect: Expectations = Expectations()) -> list[str]:
    """Violations over the orders in ``order_ids`` (default: every PlaceOrderRequested seen)."""
    orders = facts.orders(order_ids)
    ids = set(orders)
    have = facts.ids_with
    placed = have("OrderPlaced") & ids
    rejected = have("OrderRejected") & ids
    picked = have("OrderPicked") & placed
    unfulfillable = have("OrderUnfulfillable") & placed
    labelled = have("LabelGenerated") & ids
    out: list[str] = []

    out += exactly_one(facts.by_order(*PLACEMENT_TERMINALS), ids, "order", "placement terminal event")
    out += exactly_one(facts.by_order(*PICKING_TERMINALS), placed, "order", "picking terminal event")
    out += none_of(facts.by_order(*PICKING_TERMINALS), rejected, "order", "rejected", "picking terminal events")
    out += downstream_owed(facts, SYSTEM.catalog, ids, "order")

    # Shipping: a label only for a pick; nothing ships from a cancelled shipment.
    out += none_of(facts.by_order("LabelGenerated"), ids - picked, "order", "not picked", "labels")
    if expect.labels:
        out += exactly_one(facts.by_order("LabelGenerated"), picked, "order", "label")
    else:
        out += at_most_one(facts.by_order("LabelGenerated"), picked, "order", "labels")
    out += exactly_one(facts.by_order("ShipmentCancelled"), unfulfillable, "order", "cancelled shipment")
    out += none_of(facts.by_order("ShipmentCancelled"), ids - unfulfillable, "order", "not unfulfillable",
                   "cancelled shipments")

    # The customer hears of each thing once, and only of what happened.
    out += exactly_one(facts.by_order("ShipmentNotificationSent"), labelled, "order", "shipment notice")
    out += none_of(facts.by_order("ShipmentNotificationSent"), ids - labelled, "order", "no label",
                   "shipment notices")
    cancelled = have("ShipmentCancelled") & ids
    out += exactly_one(facts.by_order("CancellationNoticeSent"), cancelled, "order", "cancellation notice")
    out += none_of(facts.by_order("CancellationNoticeSent"), ids - cancelled, "order", "not cancelled",
                   "cancellation notices")

    out += _money(facts, ids, placed, rejected, picked, unfulfillable)
    out += _stock(facts, orders, picked)
    out += _late_picks(facts, ids, picked, unfulfillable)
    out += conflicting_copies(facts, ids, field="order_id")
    return out


def _money(facts: OrderFacts, ids, placed, rejected, picked, unfulfillable) -> list[str]:
    # (a refund exactly for the unfulfillable ones is RefundProcess's, in downstream_owed)
    out = exactly_one(facts.by_order("PaymentReserved"), placed, "order", "payment reservation")
    out += none_of(facts.by_order("PaymentReleased"), picked | unfulfillable, "order", "placed", "releases")
    reserved = Counter(e.order_id for e in facts.of("PaymentReserved"))
    released = Counter(e.order_id for e in facts.of("PaymentReleased"))
    for order_id in sorted(rejected):
        if reserved[order_id] != released[order_id]:
            out.append(f"order {order_id} (rejected): {reserved[order_id]} reservations, {released[order_id]} "
                       "released; a rejected order keeps no money")
    return out


def _stock(facts: OrderFacts, orders, picked) -> list[str]:
    received = Counter()
    for event in facts.of("StockReceived"):
        received[event.sku] += event.quantity
    taken = Counter()
    for event in facts.of("OrderPicked"):
        if event.order_id in picked:
            taken[event.sku] += event.quantity
    skus = {o.sku for o in orders.values()}
    return [f"article {sku}: {taken[sku]} units picked, {received[sku]} received" for sku in sorted(skus)
            if taken[sku] > received[sku]]


def _late_picks(facts: OrderFacts, ids, picked, unfulfillable) -> list[str]:
    late = facts.ids_with("PickConfirmed") & unfulfillable
    out = exactly_one(facts.by_order("PickReturned"), late, "order", "put-back of a late pick")
    out += none_of(facts.by_order("PickReturned"), ids - late, "order", "no late pick", "put-backs")
    return out
