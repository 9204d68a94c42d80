"""The second system's warehouse through its real Faust agents (``agent.test_context()``, Avro on a mock
registry): the picking orchestration and the stock keeper, repartitioned by sku and back, as the workers run
them. OPENGYM_SYSTEM is not set: the component knows its system, so its codec reads the system's contracts
(as ``faust -A order_fulfilment.agents.warehouse worker`` does)."""

from __future__ import annotations

import pytest

from opengym_streams.testing import Scenario
from order_fulfilment import topics
from order_fulfilment.agents import warehouse
from order_fulfilment.models import OrderPlaced, PickConfirmed, PickerAssigned, ReceiveStockRequested

T0 = 1_700_000_000_000


@pytest.fixture
def picking(monkeypatch):
    monkeypatch.delenv("OPENGYM_SYSTEM", raising=False)
    monkeypatch.setenv("OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS", "10000")
    with Scenario(warehouse.build(), now=T0, tier="agent", follow=True) as scenario:
        yield scenario
        crashed = [d.reason for d in scenario.dead_letters()]
        assert crashed == [], f"dead letters: {crashed}"


def placed(order_id, quantity=1):
    return OrderPlaced.new(correlation_id=order_id, order_id=order_id, customer_id="c1", sku="sku-1",
                           quantity=quantity, amount_cents=2500, payment_id=f"pay-{order_id}", occurred_at=T0)


def test_a_placed_order_is_picked_through_the_real_agents_and_the_last_unit_goes_once(picking):
    picking.given(ReceiveStockRequested.new(correlation_id="sku-1", sku="sku-1", quantity=1, bin="a-1", occurred_at=T0))
    assign = picking.when(placed("o1"))[-1].event
    assert [p.type for p in picking.last] == ["StockReservationRequested", "StockReserved", "PickerAssignmentRequested"]
    pick = picking.when(PickerAssigned.new(caused_by=assign, order_id="o1", picker_id="picker-2", occurred_at=T0 + 5))
    picking.when(PickConfirmed.new(caused_by=pick[0].event, order_id="o1", picker_id="picker-2", sku="sku-1",
                                   quantity=1, occurred_at=T0 + 50))
    picking.expect((topics.WAREHOUSE_EVENTS.name, "OrderPicked", {"picker_id": "picker-2"}))
    picking.when(placed("o2"))
    assert [p.type for p in picking.last] == ["StockReservationRequested", "StockShort", "OrderUnfulfillable"]
    assert picking.state("articles", "sku-1")["reserved"] == {"o1": 1}


def test_a_redelivered_order_placed_starts_no_second_picking(picking):
    picking.given(ReceiveStockRequested.new(correlation_id="sku-1", sku="sku-1", quantity=5, bin="a-1", occurred_at=T0))
    order = placed("o3")
    picking.when(order)
    picking.when(order)
    picking.expect_nothing()
