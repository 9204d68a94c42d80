"""The order demo: its plan, its invariants checked on what the components really publish for it (run in
process by streams.testing.Scenario), a broken copy of those facts named order by order, and its options."""

from __future__ import annotations

import pytest

from opengym_streams.demo.summary import render
from opengym_streams.testing import Scenario
from order_fulfilment.agents import notifications, order, payments, pickers, shipping, warehouse
from order_fulfilment.demo import DEMO
from order_fulfilment.demo.driver import Driver
from order_fulfilment.demo.facts import OrderFacts
from order_fulfilment.demo.invariants import check_invariants
from order_fulfilment.demo.summary import summarize
from order_fulfilment.demo.workload import (CARD_LIMIT_CENTS, DEFAULT_SHARES, OVER_LIMIT, SCARCE_ARTICLE,
                                            UNKNOWN_ARTICLE, WorkloadConfig, order_event, plan_workload, stock_events)

T0 = 1_700_000_000_000


def test_the_plan_splits_the_orders_by_intent_exactly_and_is_the_same_for_the_same_seed():
    plan = plan_workload(WorkloadConfig(orders=200, seed=3), run_id="r")
    assert plan == plan_workload(WorkloadConfig(orders=200, seed=3), run_id="r")
    assert plan.intents() == {intent: round(200 * share) for intent, share in DEFAULT_SHARES.items()}
    assert all(o.amount_cents > CARD_LIMIT_CENTS for o in plan.orders if o.intent == OVER_LIMIT)
    stocked = {a.sku: a.stock for a in plan.stocked}
    assert all(o.sku not in stocked for o in plan.orders if o.intent == UNKNOWN_ARTICLE)
    scarce = [o for o in plan.orders if o.intent == SCARCE_ARTICLE]
    assert sum(stocked[o.sku] for o in {o.sku: o for o in scarce}.values()) < len(scarce), "some will run out"
    assert all(o.order_id.startswith("r-") and o.sku.startswith("r-") for o in plan.orders)


@pytest.fixture(scope="module")
def run():
    """A plan of 60 orders through every component in process; the facts as the demo's collector keeps them."""
    plan = plan_workload(WorkloadConfig(orders=60, seed=5), run_id="u")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENGYM_PICKERS_PICK_MS", "0")
        patch.setenv("OPENGYM_PICKERS_DAMAGED_SHARE", "0.1")
        patch.setenv("OPENGYM_PAYMENTS_DECLINE_SHARE", "0.1")
        with Scenario(order.build(), payments.build(), warehouse.build(), pickers.build(), shipping.build(),
                      notifications.build(), now=T0, follow=True) as scenario:
            requests = stock_events(plan) + [order_event(plan, o, occurred_at=T0) for o in plan.orders]
            scenario.given(*requests)
            events = requests + [p.event for p in scenario.published]
    return plan, events


def facts_of(events) -> OrderFacts:
    return OrderFacts(events)


def test_the_invariants_hold_on_what_the_components_publish(run):
    plan, events = run
    facts = facts_of(events)
    assert check_invariants(facts, [o.order_id for o in plan.orders]) == []
    summary = summarize(facts, [o.order_id for o in plan.orders], {o.order_id: o.intent for o in plan.orders})
    assert summary.orders == 60
    assert summary.picking["picked"] == summary.shipping["labels generated"] == summary.notified["shipment notices"]
    assert summary.money["refunded (unfulfillable)"] == sum(n for k, n in summary.picking.items()
                                                            if k.startswith("unfulfillable:"))
    assert "Invariants                                   all hold" in render(summary)


def test_a_lost_notice_a_second_label_and_a_refund_of_a_shipped_order_are_each_named(run):
    plan, events = run
    notice = next(e for e in events if e.type_name == "ShipmentNotificationSent")
    label = next(e for e in events if e.type_name == "LabelGenerated" and e.order_id != notice.order_id)
    refund = next(e for e in events if e.type_name == "PaymentRefunded")
    shipped = next(e.order_id for e in events if e.type_name == "OrderPicked" and e.order_id not in
                   (notice.order_id, label.order_id))
    broken = [e for e in events if e is not notice]
    broken.append(label.model_copy(update={"event_id": "a-second-label"}))
    broken.append(refund.model_copy(update={"event_id": "a-wrong-refund", "order_id": shipped,
                                            "correlation_id": shipped}))
    violations = check_invariants(facts_of(broken), [o.order_id for o in plan.orders])
    assert f"order {notice.order_id}: no shipment notice (expected exactly one)" in violations
    assert any(v.startswith(f"order {label.order_id}: 2 labels") for v in violations), violations
    assert f"order {shipped} (no OrderUnfulfillable): 1 PaymentRefunded, expected none" in violations


def test_the_driver_owes_nothing_once_every_order_is_told_and_waits_for_a_missing_notice(run):
    plan, events = run

    class Seen:
        def __init__(self, facts):
            self.facts = facts

        def poll(self, timeout=0.0, max_messages=0):
            return 0

    settled = Driver(plan, Seen(facts_of(events)), producer=object(), codec=object())
    settled.sent = [o.order_id for o in plan.orders]
    assert not any(settled.outstanding().values()), settled.outstanding()
    notice = next(e for e in events if e.type_name == "ShipmentNotificationSent")
    waiting = Driver(plan, Seen(facts_of([e for e in events if e is not notice])), producer=object(), codec=object())
    waiting.sent = settled.sent
    assert waiting.outstanding()["shipment notices"] == 1


def test_demo_options_become_the_workers_fault_knobs(monkeypatch):
    from opengym_streams.commands.demo import parse

    monkeypatch.setenv("OPENGYM_SYSTEM", "")  # restored (unset) after the test, whatever parse() sets
    demo, options = parse(["--system", "order-fulfilment", "--orders", "25", "--late-pick-share", "0.2",
                           "--pick-timeout-ms", "3000", "--rate", "5"])
    assert demo is DEMO and options.workload.orders == 25 and options.rate == 5
    env = demo.worker_env(options.faults)
    assert env["OPENGYM_PICKERS_LATE_SHARE"] == "0.2" and env["OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS"] == "3000"
    with pytest.raises(ValueError, match="--orders must be at least 1"):
        parse(["--orders", "0"])
