"""Drives an order plan through the running components: stock the warehouse, place the orders, wait until
every order has gone as far as it can (shipped and told, or refunded and told)."""

from __future__ import annotations

from collections import Counter

from confluent_kafka import Producer

from opengym_streams.codec import AvroCodec
from opengym_streams.demo import driver as library
from opengym_streams.demo.collector import FactCollector
from opengym_streams.event import Event, now_ms
from order_fulfilment.agents.system import SYSTEM
from order_fulfilment.demo.facts import PICKING_TERMINALS, PLACEMENT_TERMINALS
from order_fulfilment.demo.workload import WorkloadPlan, order_event, stock_events


class Driver(library.Driver):
    trigger = "PlaceOrderRequested"

    def __init__(self, plan: WorkloadPlan, collector: FactCollector, producer: Producer | None = None,
                 codec: AvroCodec | None = None, labels_expected: bool = True, late_pick_ms: int | None = None):
        super().__init__(collector, producer, codec, system=SYSTEM)
        if not hasattr(collector.facts, "by_order"):
            raise TypeError("the order driver reads its facts by order: FactCollector(facts=OrderFacts())")
        self.plan = plan
        self.labels_expected = labels_expected
        """False when some labels never come back (the stuck-label knob): nobody waits for those."""
        self.late_pick_ms = late_pick_ms
        """How late the pickers confirm a late pick (None: no late picks): a pick that timed out may still be
        confirmed until then, and put back; the run waits for that, a little longer than that."""

    def requests(self) -> list:
        return list(self.plan.orders)

    def id_of(self, order) -> str:
        return order.order_id

    def request_event(self, order, occurred_at: int) -> Event:
        return order_event(self.plan, order, occurred_at=occurred_at)

    def seed(self, timeout: float = 60.0, resend_after: float = 15.0) -> None:
        """Goods in for every stocked article; wait until the warehouse has received them all."""
        receipts = stock_events(self.plan)

        def unanswered() -> list[Event]:
            received = {e.sku for e in self.facts.of("StockReceived")}
            return [e for e in receipts if e.sku not in received]

        self.request_until_answered(receipts, unanswered, lambda e: e.sku, timeout, resend_after)

    def outstanding(self) -> dict[str, int]:
        """What the system still owes the orders sent so far (all zero when it is settled)."""
        facts = self.facts
        sent = set(self.sent)
        have = facts.ids_with
        placed = have("OrderPlaced") & sent
        rejected = have("OrderRejected") & sent
        picked = have("OrderPicked") & placed
        unfulfillable = have("OrderUnfulfillable") & placed
        labelled = have("LabelGenerated") & picked
        cancelled = have("ShipmentCancelled") & unfulfillable
        out: Counter = Counter()
        out["placement terminals"] = len(sent - have(*PLACEMENT_TERMINALS))
        out["payment replies"] = len((have("PaymentReservationRequested") & sent)
                                     - have("PaymentReserved", "PaymentDeclined"))
        out["late reservations released"] = len((have("PaymentReserved") & rejected) - have("PaymentReleased"))
        out["confirmations"] = len(placed - have("OrderConfirmationSent"))
        out["picking terminals"] = len(placed - have(*PICKING_TERMINALS))
        out["late picks put back"] = len((have("PickConfirmed") & unfulfillable) - have("PickReturned"))
        if self.late_pick_ms is not None:
            timed_out = {e.order_id for e in facts.of("OrderUnfulfillable") if e.reason == "PICK_TIMEOUT"} & sent
            asked = {e.order_id: e.occurred_at for e in facts.of("PickRequested")}
            soon = now_ms() - self.late_pick_ms - 2000
            out["late picks awaited"] = sum(1 for o in timed_out - have("PickConfirmed") if asked.get(o, 0) > soon)
        out["shipments"] = len(picked - have("ShipmentCreated"))
        if self.labels_expected:
            out["labels"] = len(picked - labelled)
        out["shipment notices"] = len(labelled - have("ShipmentNotificationSent"))
        out["cancelled shipments"] = len(unfulfillable - cancelled)
        out["cancellation notices"] = len(cancelled - have("CancellationNoticeSent"))
        out["refunds"] = len(unfulfillable - have("PaymentRefunded"))
        return dict(out)

    def progress_line(self, elapsed: float) -> str:
        facts = self.facts
        sent = set(self.sent)
        placed = facts.ids_with("OrderPlaced") & sent
        count = {t: len(facts.ids_with(t) & sent) for t in ("OrderRejected", "OrderPicked", "OrderUnfulfillable",
                                                            "LabelGenerated", "ShipmentNotificationSent",
                                                            "CancellationNoticeSent")}
        return (f"[{elapsed:6.1f}s] sent {len(self.sent)}/{len(self.plan.orders)}  placed {len(placed)} rejected "
                f"{count['OrderRejected']}  picked {count['OrderPicked']} unfulfillable {count['OrderUnfulfillable']}  "
                f"labels {count['LabelGenerated']}  notices {count['ShipmentNotificationSent']}/"
                f"{count['CancellationNoticeSent']}"
                + (f"  window {self.window.limit}" if self.window is not None else ""))
