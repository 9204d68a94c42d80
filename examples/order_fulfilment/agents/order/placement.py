"""OrderPlacementOrchestration, stated once: Order's step table, which the runtime executes and the
observer, ``opengym catalog check``, the docs and the tests read.

An order is keyed by order_id (= correlation_id). The deadline runs from the order's ``occurred_at`` and
is compared with ``ClockTicked.now`` (tests move time by sending ticks).

| step | participant | request | replies | waits in | deadline | compensation |
| --- | --- | --- | --- | --- | --- | --- |
| ReservePayment | Payments | PaymentReservationRequested | PaymentReserved, PaymentDeclined | RESERVING_PAYMENT | ``OPENGYM_ORDER_PAYMENT_TIMEOUT_MS`` -> PAYMENT_TIMEOUT; a reply dated later is a timeout too | PaymentReleaseRequested(LATE_RESERVATION) |
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.catalog import Compensation, Orchestration, Step, Terminal, fails, succeeds
from opengym_streams.component import labelled
from opengym_streams.event import value_of
from opengym_streams.settings import env_ms, from_env, knob
from order_fulfilment.models import (OrderPlaced, OrderRejected, OrderRejection, PaymentReleaseRequested,
                                     PaymentReservationRequested, ReleaseCause)

SECOND = 1000

RESERVING_PAYMENT = "RESERVING_PAYMENT"
PLACED = "PLACED"
REJECTED = "REJECTED"

DECLINE_TO_REJECTION = {"INSUFFICIENT_FUNDS": OrderRejection.INSUFFICIENT_FUNDS,
                        "CARD_DECLINED": OrderRejection.CARD_DECLINED}


@dataclass(frozen=True)
class PlacementConfig:
    payment_timeout_ms: int = knob("OPENGYM_ORDER_PAYMENT_TIMEOUT_MS", 5000,
                                   "Order's deadline for Payments' reply, from the order's occurred_at")

    @classmethod
    def from_env(cls) -> "PlacementConfig":
        return from_env(cls)


def _start(request) -> dict:
    return {"order_id": request.order_id, "customer_id": request.customer_id, "sku": request.sku,
            "quantity": request.quantity, "amount_cents": request.amount_cents}


def _reserve(data: dict, cause, now: int) -> PaymentReservationRequested:
    return PaymentReservationRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"],
                                           customer_id=data["customer_id"], amount_cents=data["amount_cents"])


def _release(data: dict, cause, now: int) -> PaymentReleaseRequested:
    return PaymentReleaseRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"],
                                       payment_id=data["payment_id"], reason=ReleaseCause.LATE_RESERVATION)


def _placed(data: dict, cause, now: int) -> OrderPlaced:
    return OrderPlaced.new(caused_by=cause, occurred_at=now, order_id=data["order_id"],
                           customer_id=data["customer_id"], sku=data["sku"], quantity=data["quantity"],
                           amount_cents=data["amount_cents"], payment_id=data["payment_id"])


def _rejected(data: dict, cause, now: int, reason) -> OrderRejected:
    return OrderRejected.new(caused_by=cause, correlation_id=data["order_id"], discriminator=data["order_id"],
                             occurred_at=now, order_id=data["order_id"], customer_id=data["customer_id"],
                             reason=reason)


def orchestration(config: PlacementConfig | None = None) -> Orchestration:
    config = config or PlacementConfig.from_env()
    return Orchestration(
        "OrderPlacementOrchestration", owner="order", trigger="PlaceOrderRequested", start=_start,
        steps=(
            Step("ReservePayment", participant="payments", request="PaymentReservationRequested", ask=_reserve,
                 process="PaymentReservationProcess",
                 replies=(succeeds("PaymentReserved", keep=lambda e: {"payment_id": e.payment_id}),
                          fails("PaymentDeclined",
                                lambda e: DECLINE_TO_REJECTION.get(value_of(e.reason), OrderRejection.UNKNOWN))),
                 waits_in=RESERVING_PAYMENT, deadline_ms=config.payment_timeout_ms,
                 on_timeout=OrderRejection.PAYMENT_TIMEOUT, late_reply="time_out",
                 compensation=Compensation(
                     "PaymentReleaseRequested", _release, process="PaymentReleaseProcess", replies=("PaymentReleased",),
                     deadline_ms=env_ms("PAYMENT_RELEASE_PROCESS_DEADLINE", 10 * SECOND,
                                        "how long Payments may take to release a late reservation"),
                     outcome="late_payment_released",
                     doc="Give back a reservation made after the order gave up (no customer pays for a rejected "
                         "order)."),
                 doc="Reserve the order's amount on the customer's card; control returns."),
        ),
        succeeded=Terminal("OrderPlaced", _placed, "placed"),
        failed=Terminal("OrderRejected", _rejected, labelled("rejected", "reason")),
        succeeded_phase=PLACED, failed_phase=REJECTED,
        doc="Order owns the order from request to terminal event; it never waits for the warehouse.",
    )
