"""Synthetic fact streams for the observer: whole orders, clean or with one known fault, built the way the
components build them (each event caused by the previous, same correlation id), so an oracle knows exactly
which anomalies the observer must report. The observer's detection test and ``opengym bench observer`` use
them. The stock keeper's internal steps are not here: the observer does not see them (no nested process).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from opengym_streams.event import Event
from order_fulfilment.models import (CancellationNoticeSent, LabelGenerated, OrderConfirmationSent, OrderPicked,
                                     OrderPlaced, OrderRejected, OrderUnfulfillable, PaymentDeclined, PaymentRefunded,
                                     PaymentReleased, PaymentReleaseRequested, PaymentReservationRequested,
                                     PaymentReserved, PickConfirmed, PickerAssigned, PickerAssignmentRequested,
                                     PickRequested, PickReturned, PickReturnRequested, PlaceOrderRequested,
                                     ShipmentCancelled, ShipmentCreated, ShipmentNotificationSent)

CLEAN = "clean"
DECLINED = "declined"
OUT_OF_STOCK = "out-of-stock"
PICK_TIMEOUT = "pick-timeout"
LATE_PICK = "late-pick"
LATE_PAYMENT = "late-payment"
CONFIRMATION_NEVER_SENT = "confirmation-never-sent"
LABEL_STUCK = "label-stuck"
NOTICE_NEVER_SENT = "notice-never-sent"
REFUND_NEVER_STARTED = "refund-never-started"
ORPHAN_REPLY = "orphan-reply"

SCENARIOS = (CLEAN, DECLINED, OUT_OF_STOCK, PICK_TIMEOUT, LATE_PICK, LATE_PAYMENT, CONFIRMATION_NEVER_SENT,
             LABEL_STUCK, NOTICE_NEVER_SENT, REFUND_NEVER_STARTED, ORPHAN_REPLY)

EXPECTED: dict[str, tuple[tuple[str, str], ...]] = {
    CLEAN: (),
    DECLINED: (),
    OUT_OF_STOCK: (),
    PICK_TIMEOUT: (("NESTED_TIMEOUT", "PickConfirmationProcess"),),
    LATE_PICK: (("NESTED_TIMEOUT", "PickConfirmationProcess"), ("LATE_REPLY", "PickConfirmationProcess")),
    LATE_PAYMENT: (("NESTED_TIMEOUT", "PaymentReservationProcess"), ("LATE_REPLY", "PaymentReservationProcess")),
    CONFIRMATION_NEVER_SENT: (("DOWNSTREAM_NOT_STARTED", "OrderConfirmationProcess"),),
    # One fault, two levels: Shipping's own process did not complete, and the choreography stalled there.
    LABEL_STUCK: (("DOWNSTREAM_NOT_COMPLETED", "LabelGeneration"), ("CHAIN_STALLED", "OrderDelivery")),
    NOTICE_NEVER_SENT: (("CHAIN_STALLED", "OrderDelivery"),),
    REFUND_NEVER_STARTED: (("DOWNSTREAM_NOT_STARTED", "RefundProcess"),),
    ORPHAN_REPLY: (("REPLY_WITHOUT_REQUEST", "PaymentReservationProcess"),),
}
"""(kind, process) of every anomaly each scenario must produce, and nothing else."""

FAULTS_PER_1000 = {PICK_TIMEOUT: 10, LATE_PICK: 5, CONFIRMATION_NEVER_SENT: 10, LABEL_STUCK: 10, DECLINED: 50,
                   OUT_OF_STOCK: 30}
"""The faults in a thousand orders of the observer benchmark's workload."""


@dataclass(frozen=True)
class Timing:
    """Gaps between the facts of one order, in ms (all well inside the catalog's deadlines)."""

    step_ms: int = 20
    payment_deadline_ms: int = 5000
    """PaymentReservationProcess's deadline, from PlaceOrderRequested."""
    pick_deadline_ms: int = 10_000
    """PickConfirmationProcess's deadline, from PickRequested."""


def order(order_id: str, t0: int, scenario: str = CLEAN, timing: Timing = Timing()) -> list[Event]:
    """Every fact of one order, in the order the components emit them."""
    step = timing.step_ms
    customer, sku = f"customer-{order_id}", f"sku-{order_id}"

    def at(n: int) -> int:
        return t0 + n * step

    requested = PlaceOrderRequested.new(correlation_id=order_id, occurred_at=at(0), order_id=order_id,
                                        customer_id=customer, sku=sku, quantity=1, amount_cents=2500)
    reserve = PaymentReservationRequested.new(caused_by=requested, occurred_at=at(1), order_id=order_id,
                                              customer_id=customer, amount_cents=2500)
    if scenario == ORPHAN_REPLY:
        # The request is produced nowhere: the reply names a request the observer never sees.
        declined = PaymentDeclined.new(caused_by=reserve, occurred_at=at(2), order_id=order_id, reason="CARD_DECLINED")
        return [requested, declined, OrderRejected.new(caused_by=declined, occurred_at=at(3), order_id=order_id,
                                                       customer_id=customer, reason="CARD_DECLINED")]
    facts: list[Event] = [requested, reserve]
    if scenario == DECLINED:
        declined = PaymentDeclined.new(caused_by=reserve, occurred_at=at(2), order_id=order_id,
                                       reason="INSUFFICIENT_FUNDS")
        return facts + [declined, OrderRejected.new(caused_by=declined, occurred_at=at(3), order_id=order_id,
                                                    customer_id=customer, reason="INSUFFICIENT_FUNDS")]
    if scenario == LATE_PAYMENT:
        gave_up = t0 + timing.payment_deadline_ms
        late = PaymentReserved.new(caused_by=reserve, occurred_at=gave_up + 500, order_id=order_id,
                                   payment_id=f"pay-{order_id}", amount_cents=2500)
        release = PaymentReleaseRequested.new(caused_by=late, occurred_at=gave_up + 500 + step, order_id=order_id,
                                              payment_id=f"pay-{order_id}", reason="LATE_RESERVATION")
        return facts + [OrderRejected.new(caused_by=reserve, occurred_at=gave_up, order_id=order_id,
                                          customer_id=customer, reason="PAYMENT_TIMEOUT"),
                        late, release,
                        PaymentReleased.new(caused_by=release, occurred_at=gave_up + 500 + 2 * step, order_id=order_id,
                                            payment_id=f"pay-{order_id}", amount_cents=2500)]
    reserved = PaymentReserved.new(caused_by=reserve, occurred_at=at(2), order_id=order_id,
                                   payment_id=f"pay-{order_id}", amount_cents=2500)
    placed = OrderPlaced.new(caused_by=reserved, occurred_at=at(3), order_id=order_id, customer_id=customer, sku=sku,
                             quantity=1, amount_cents=2500, payment_id=f"pay-{order_id}")
    facts += [reserved, placed]
    if scenario != CONFIRMATION_NEVER_SENT:
        facts.append(OrderConfirmationSent.new(caused_by=placed, occurred_at=at(4), order_id=order_id,
                                               customer_id=customer, template="order-confirmed"))
    if scenario in (OUT_OF_STOCK, REFUND_NEVER_STARTED):
        return facts + _cancelled(OrderUnfulfillable.new(caused_by=placed, occurred_at=at(5), order_id=order_id,
                                                         customer_id=customer, sku=sku, reason="OUT_OF_STOCK"),
                                  refund=scenario != REFUND_NEVER_STARTED)
    assign = PickerAssignmentRequested.new(caused_by=placed, occurred_at=at(5), order_id=order_id, sku=sku, quantity=1,
                                           bin="aisle-1-bin-1")
    assigned = PickerAssigned.new(caused_by=assign, occurred_at=at(6), order_id=order_id, picker_id="picker-1")
    pick = PickRequested.new(caused_by=assigned, occurred_at=at(7), order_id=order_id, picker_id="picker-1", sku=sku,
                             quantity=1, bin="aisle-1-bin-1")
    facts += [assign, assigned, pick]
    if scenario in (PICK_TIMEOUT, LATE_PICK):
        gave_up = pick.occurred_at + timing.pick_deadline_ms
        facts += _cancelled(OrderUnfulfillable.new(caused_by=pick, occurred_at=gave_up, order_id=order_id,
                                                   customer_id=customer, sku=sku, reason="PICK_TIMEOUT"))
        if scenario == LATE_PICK:
            late = PickConfirmed.new(caused_by=pick, occurred_at=gave_up + 500, order_id=order_id, picker_id="picker-1",
                                     sku=sku, quantity=1)
            back = PickReturnRequested.new(caused_by=late, occurred_at=gave_up + 500 + step, order_id=order_id,
                                           picker_id="picker-1", sku=sku, quantity=1)
            facts += [late, back, PickReturned.new(caused_by=back, occurred_at=gave_up + 500 + 2 * step,
                                                   order_id=order_id, picker_id="picker-1", sku=sku, quantity=1)]
        return facts
    confirmed = PickConfirmed.new(caused_by=pick, occurred_at=at(8), order_id=order_id, picker_id="picker-1", sku=sku,
                                  quantity=1)
    picked = OrderPicked.new(caused_by=confirmed, occurred_at=at(9), order_id=order_id, customer_id=customer, sku=sku,
                             quantity=1, picker_id="picker-1")
    created = ShipmentCreated.new(caused_by=picked, occurred_at=at(10), order_id=order_id,
                                  shipment_id=f"ship-{order_id}", customer_id=customer)
    facts += [confirmed, picked, created]
    if scenario == LABEL_STUCK:
        return facts
    label = LabelGenerated.new(caused_by=created, occurred_at=at(10), order_id=order_id, shipment_id=f"ship-{order_id}",
                               customer_id=customer, tracking_number=f"T-{order_id}", carrier="parcelco")
    facts.append(label)
    if scenario != NOTICE_NEVER_SENT:
        facts.append(ShipmentNotificationSent.new(caused_by=label, occurred_at=at(11), order_id=order_id,
                                                  customer_id=customer, tracking_number=f"T-{order_id}"))
    return facts


def _cancelled(unfulfillable: OrderUnfulfillable, refund: bool = True) -> list[Event]:
    """The unfulfillable order, then what Shipping, Notifications and Payments do about it."""
    when = unfulfillable.occurred_at
    cancelled = ShipmentCancelled.new(caused_by=unfulfillable, occurred_at=when + 20, order_id=unfulfillable.order_id,
                                      customer_id=unfulfillable.customer_id)
    out: list[Event] = [unfulfillable, cancelled]
    if refund:
        out.append(PaymentRefunded.new(caused_by=unfulfillable, occurred_at=when + 20, order_id=unfulfillable.order_id,
                                       payment_id=f"pay-{unfulfillable.order_id}", amount_cents=2500))
    out.append(CancellationNoticeSent.new(caused_by=cancelled, occurred_at=when + 40, order_id=unfulfillable.order_id,
                                          customer_id=unfulfillable.customer_id))
    return out


def mix(count: int, faults: dict[str, int], seed: int = 7) -> list[str]:
    """``count`` scenarios: the given number of each fault, the rest clean."""
    chosen: list[str] = []
    for scenario, n in faults.items():
        chosen += [scenario] * n
    if len(chosen) > count:
        raise ValueError(f"{len(chosen)} faults do not fit in {count} orders")
    chosen += [CLEAN] * (count - len(chosen))
    random.Random(seed).shuffle(chosen)
    return chosen
