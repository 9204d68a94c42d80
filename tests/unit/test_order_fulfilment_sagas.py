"""The second system's orchestrations and its choreography, as saga tests over the components' own runtime
code (streams.testing.Scenario): given these facts, when this event or this much time, expect these events."""

from __future__ import annotations

import pytest

from opengym_streams.testing import Scenario
from order_fulfilment.agents import notifications, order, payments, pickers, shipping, warehouse
from order_fulfilment.models import (LabelGenerated, OrderPlaced, PaymentReservationRequested, PaymentReserved,
                                     PickConfirmed, PickerAssigned, PickRequested, PlaceOrderRequested,
                                     ReceiveStockRequested, ShipmentCancelled)

T0 = 1_700_000_000_000


@pytest.fixture(autouse=True)
def picks_take_no_time(monkeypatch):
    monkeypatch.setenv("OPENGYM_PICKERS_PICK_MS", "0")


def stock(sku="sku-1", quantity=2, at=T0):
    return ReceiveStockRequested.new(correlation_id=sku, sku=sku, quantity=quantity, bin="aisle-1-bin-1", occurred_at=at)


def place(order_id="o1", sku="sku-1", quantity=1, amount=2500, at=T0):
    return PlaceOrderRequested.new(correlation_id=order_id, order_id=order_id, customer_id="c1", sku=sku,
                                   quantity=quantity, amount_cents=amount, occurred_at=at)


def placed(order_id="o1", sku="sku-1", quantity=1, at=T0):
    return OrderPlaced.new(correlation_id=order_id, order_id=order_id, customer_id="c1", sku=sku, quantity=quantity,
                           amount_cents=2500, payment_id=f"pay-{order_id}", occurred_at=at)


def everything():
    return Scenario(order.build(), payments.build(), warehouse.build(), pickers.build(), shipping.build(),
                    notifications.build(), now=T0, follow=True)


def test_an_order_in_stock_is_placed_picked_labelled_and_the_customer_told():
    with everything() as scenario:
        scenario.given(stock())
        scenario.when(place())
        scenario.expect(
            ("shop.payments.requests", "PaymentReservationRequested"),
            ("shop.payments.events", "PaymentReserved"),
            ("shop.order.events", "OrderPlaced"),
            ("shop.warehouse.stock", "StockReservationRequested"),
            ("shop.notifications.events", "OrderConfirmationSent"),
            ("shop.warehouse.stock-replies", "StockReserved", {"bin": "aisle-1-bin-1"}),
            ("shop.pickers.requests", "PickerAssignmentRequested"),
            ("shop.pickers.events", "PickerAssigned"),
            ("shop.pickers.requests", "PickRequested"),
            ("shop.pickers.events", "PickConfirmed"),
            ("shop.warehouse.events", "OrderPicked"),
            ("shop.shipping.events", "ShipmentCreated"),
            ("shop.shipping.events", "LabelGenerated"),
            ("shop.notifications.events", "ShipmentNotificationSent"))
        assert scenario.state("orders", "o1")["phase"] == "PLACED"
        assert scenario.state("picks", "o1")["phase"] == "PICKED"


def test_an_order_over_the_card_limit_is_rejected_and_never_reaches_the_warehouse():
    with everything() as scenario:
        scenario.given(stock())
        scenario.when(place(amount=90_000))
        scenario.expect(("shop.payments.requests", "PaymentReservationRequested"),
                        ("shop.payments.events", "PaymentDeclined", {"reason": "INSUFFICIENT_FUNDS"}),
                        ("shop.order.events", "OrderRejected", {"reason": "INSUFFICIENT_FUNDS"}))


def test_an_article_out_of_stock_makes_the_order_unfulfillable_refunded_cancelled_and_told():
    with everything() as scenario:
        scenario.given(stock(quantity=1))
        scenario.when(place(quantity=2))
        types = [p.type for p in scenario.last]
        assert types[types.index("StockShort"):] == ["StockShort", "OrderUnfulfillable", "PaymentRefunded",
                                                      "ShipmentCancelled", "CancellationNoticeSent"]
        assert scenario.of_type("OrderUnfulfillable")[0].reason.value == "OUT_OF_STOCK"


def test_the_stock_keeper_never_sells_the_last_unit_twice():
    with Scenario(warehouse.build(), now=T0, follow=True) as scenario:
        scenario.given(stock(quantity=1))
        scenario.when(placed("o1"))
        scenario.when(placed("o2"))
        assert [p.type for p in scenario.last] == ["StockReservationRequested", "StockShort", "OrderUnfulfillable"]
        assert scenario.state("articles", "sku-1")["reserved"] == {"o1": 1}


def test_a_payment_reply_after_the_deadline_rejects_the_order_and_releases_the_late_reservation(monkeypatch):
    monkeypatch.setenv("OPENGYM_ORDER_PAYMENT_TIMEOUT_MS", "5000")
    with Scenario(order.build(), now=T0) as scenario:
        request = scenario.when(place())[0].event
        scenario.when_time_passes(4999)
        scenario.expect_nothing()
        scenario.when_time_passes(1)
        scenario.expect(("shop.order.events", "OrderRejected", {"reason": "PAYMENT_TIMEOUT"}))
        scenario.when(PaymentReserved.new(caused_by=request, order_id="o1", payment_id="pay-o1", amount_cents=2500,
                                          occurred_at=T0 + 5200))
        scenario.expect(("shop.payments.requests", "PaymentReleaseRequested", {"payment_id": "pay-o1",
                                                                              "reason": "LATE_RESERVATION"}))


def test_a_pick_not_confirmed_in_time_releases_the_stock_and_a_late_pick_is_put_back(monkeypatch):
    monkeypatch.setenv("OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS", "10000")
    with Scenario(warehouse.build(), now=T0, follow=True) as scenario:
        scenario.given(stock(quantity=1))
        assign = scenario.when(placed())[-1].event
        assert assign.type_name == "PickerAssignmentRequested"
        pick = scenario.when(PickerAssigned.new(caused_by=assign, order_id="o1", picker_id="picker-3",
                                                occurred_at=T0 + 10))
        scenario.expect(("shop.pickers.requests", "PickRequested", {"picker_id": "picker-3"}))
        scenario.when_time_passes(10_000)
        scenario.expect(("shop.warehouse.events", "OrderUnfulfillable", {"reason": "PICK_TIMEOUT"}),
                        ("shop.warehouse.stock", "StockReleaseRequested"))
        assert scenario.state("articles", "sku-1")["reserved"] == {}, "the units are back in stock"
        scenario.when(PickConfirmed.new(caused_by=pick[0].event, order_id="o1", picker_id="picker-3", sku="sku-1",
                                        quantity=1, occurred_at=T0 + 12_000))
        scenario.expect(("shop.pickers.requests", "PickReturnRequested", {"picker_id": "picker-3"}))


def test_every_picker_busy_ends_the_picking_and_gives_the_units_back(monkeypatch):
    monkeypatch.setenv("OPENGYM_PICKERS_BUSY_SHARE", "1")
    with everything() as scenario:
        scenario.given(stock(quantity=1))
        scenario.when(place())
        assert scenario.of_type("OrderUnfulfillable")[0].reason.value == "NO_PICKER"
        assert scenario.state("articles", "sku-1")["reserved"] == {}
        assert [e.type_name for e in scenario.of_type("PaymentRefunded")] == ["PaymentRefunded"]


def test_the_pickers_hold_a_pick_until_it_is_done(monkeypatch):
    monkeypatch.setenv("OPENGYM_PICKERS_PICK_MS", "300")
    with Scenario(pickers.build(), now=T0) as scenario:
        request = PickRequested.new(correlation_id="o1", order_id="o1", picker_id="picker-1", sku="sku-1", quantity=1,
                                    bin="b", occurred_at=T0)
        scenario.when(request)
        scenario.expect_nothing()
        scenario.when_time_passes(299)
        scenario.expect_nothing()
        scenario.when_time_passes(1)
        scenario.expect(("shop.pickers.events", "PickConfirmed", {"occurred_at": T0 + 300}))
        scenario.when(request)  # asked again: the same confirmation, not a second pick
        scenario.expect(("shop.pickers.events", "PickConfirmed", {"occurred_at": T0 + 300}))


def test_a_repeated_reservation_is_answered_with_the_very_same_reply():
    with Scenario(payments.build(), now=T0) as scenario:
        request = PaymentReservationRequested.new(correlation_id="o1", order_id="o1", customer_id="c1",
                                                  amount_cents=2500, occurred_at=T0)
        first = scenario.when(request)[0].event
        scenario.now += 1000
        again = scenario.when(request)[0].event
        assert again == first


def test_notifications_tell_the_customer_once_of_each_thing():
    with Scenario(notifications.build(), now=T0) as scenario:
        label = LabelGenerated.new(correlation_id="o1", order_id="o1", shipment_id="s1", customer_id="c1",
                                   tracking_number="T1", carrier="parcelco", occurred_at=T0)
        scenario.when(label)
        scenario.expect(("shop.notifications.events", "ShipmentNotificationSent", {"tracking_number": "T1"}))
        scenario.when(label.model_copy(update={"event_id": "the-same-label-again"}))
        scenario.expect_nothing()
        scenario.when(ShipmentCancelled.new(correlation_id="o2", order_id="o2", customer_id="c1", occurred_at=T0))
        scenario.expect(("shop.notifications.events", "CancellationNoticeSent"))
