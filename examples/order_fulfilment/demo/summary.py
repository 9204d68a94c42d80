"""The order demo's summary: placement outcomes, the warehouse's picking, shipping, what the customers were
told, the money, latency and throughput (the common tail is the library's)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from opengym_streams.demo.summary import Report, Table, latencies
from order_fulfilment.demo.facts import PLACEMENT_TERMINALS, OrderFacts, symbol


@dataclass
class Summary(Report):
    orders: int = 0
    placement: Counter = field(default_factory=Counter)
    """'placed', 'rejected:<REASON>', 'no terminal event'."""
    picking: Counter = field(default_factory=Counter)
    """Of the placed orders: 'picked', 'unfulfillable:<REASON>', 'no terminal event'."""
    intents: dict[str, Counter] = field(default_factory=dict)
    """intent -> how its orders ended ('shipped', a rejection or unfulfillable reason)."""
    shipping: Counter = field(default_factory=Counter)
    notified: Counter = field(default_factory=Counter)
    money: Counter = field(default_factory=Counter)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    throughput: float | None = None
    span_s: float | None = None

    def body(self, table: Table) -> None:
        def pct(n: int, of: int) -> str:
            return f"{n:>6}  ({100 * n / of:5.1f}%)" if of else f"{n:>6}"

        row = table.row
        row("Orders requested", f"{self.orders:>6}")
        for outcome, n in sorted(self.placement.items(), key=lambda kv: (kv[0] != "placed", -kv[1], kv[0])):
            row(outcome.replace("rejected:", "rejected  "), pct(n, self.orders), 1)
        if self.intents:
            table.blank()
            row("Outcomes by planned intent")
            for intent in sorted(self.intents, key=lambda i: -sum(self.intents[i].values())):
                row(intent, ", ".join(f"{o} {n}" for o, n in sorted(self.intents[intent].items(),
                                                                   key=lambda kv: -kv[1])), 1)
        table.blank()
        placed = self.placement.get("placed", 0)
        row("Picking (PickingOrchestration)", f"(of {placed} placed)")
        for outcome, n in sorted(self.picking.items(), key=lambda kv: (kv[0] != "picked", -kv[1], kv[0])):
            row(outcome.replace("unfulfillable:", "unfulfillable  "), pct(n, placed), 1)
        row("Shipping", "")
        for name in ("shipments created", "labels generated", "shipments cancelled"):
            table.count(name, self.shipping.get(name, 0))
        row("Customers told", "")
        for name in ("order confirmations", "shipment notices", "cancellation notices"):
            table.count(name, self.notified.get(name, 0))
        table.blank()
        row("Payments", "")
        for name in ("reserved", "declined", "released (late reservations)", "refunded (unfulfillable)",
                     "kept (shipped orders)"):
            table.count(name, self.money.get(name, 0))
        table.count("late picks put back", self.money.get("late picks put back", 0))
        table.blank()
        table.latency("Latency order -> placement terminal (ms)", self.latency_ms, self.throughput, self.span_s,
                      "orders")


def summarize(facts: OrderFacts, order_ids: Iterable[str] | None = None, intents: dict[str, str] | None = None,
              violations: list[str] | None = None) -> Summary:
    orders = facts.orders(order_ids)
    ids = set(orders)
    summary = Summary(orders=len(orders), violations=list(violations or []))
    placements = facts.by_order(*PLACEMENT_TERMINALS)
    pickings = facts.by_order("OrderPicked", "OrderUnfulfillable")
    for order_id in orders:
        ends = sorted(placements.get(order_id, []), key=lambda e: e.occurred_at)
        if not ends:
            outcome = final = "no terminal event"
        elif ends[0].type_name == "OrderRejected":
            outcome = f"rejected:{symbol(ends[0].reason)}"
            final = symbol(ends[0].reason)
        else:
            outcome = "placed"
            picks = sorted(pickings.get(order_id, []), key=lambda e: e.occurred_at)
            if not picks:
                summary.picking["no terminal event"] += 1
                final = "not picked"
            elif picks[0].type_name == "OrderPicked":
                summary.picking["picked"] += 1
                final = "shipped"
            else:
                summary.picking[f"unfulfillable:{symbol(picks[0].reason)}"] += 1
                final = symbol(picks[0].reason)
        summary.placement[outcome] += 1
        if intents and order_id in intents:
            summary.intents.setdefault(intents[order_id], Counter())[final] += 1

    def count(type_name: str) -> int:
        return sum(1 for e in facts.of(type_name) if e.order_id in ids)

    summary.shipping.update({"shipments created": count("ShipmentCreated"), "labels generated": count("LabelGenerated"),
                             "shipments cancelled": count("ShipmentCancelled")})
    summary.notified.update({"order confirmations": count("OrderConfirmationSent"),
                             "shipment notices": count("ShipmentNotificationSent"),
                             "cancellation notices": count("CancellationNoticeSent")})
    picked = {e.order_id for e in facts.of("OrderPicked")} & ids
    summary.money.update({"reserved": count("PaymentReserved"), "declined": count("PaymentDeclined"),
                          "released (late reservations)": count("PaymentReleased"),
                          "refunded (unfulfillable)": count("PaymentRefunded"),
                          "kept (shipped orders)": sum(1 for e in facts.of("PaymentReserved") if e.order_id in picked),
                          "late picks put back": count("PickReturned")})
    measured = latencies(facts, ids, "PlaceOrderRequested", PLACEMENT_TERMINALS)
    summary.latency_ms, summary.throughput, summary.span_s = measured.latency_ms, measured.throughput, measured.span_s
    summary.observe(facts, ids)
    return summary
