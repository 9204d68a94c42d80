"""The facts of an order run, by order: the views the order demo's invariants, summary and driver read."""

from __future__ import annotations

from opengym_streams.demo.facts import Facts, symbol  # noqa: F401  (symbol: re-exported)
from opengym_streams.event import Event

PLACEMENT_TERMINALS = ("OrderPlaced", "OrderRejected")
PICKING_TERMINALS = ("OrderPicked", "OrderUnfulfillable")


class OrderFacts(Facts):
    """:class:`Facts` with the views by order (every fact of an order carries its order_id)."""

    def by_order(self, *type_names: str) -> dict[str, list[Event]]:
        return self.grouped("order_id", *type_names)

    def orders(self, order_ids=None) -> dict[str, Event]:
        """The PlaceOrderRequested events (the first seen per order), optionally only these."""
        return self.first("PlaceOrderRequested", order_ids, field="order_id")

    def ids_with(self, *type_names: str) -> set[str]:
        return {e.order_id for e in self.of(*type_names)}
