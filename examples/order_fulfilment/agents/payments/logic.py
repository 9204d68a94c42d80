"""Payments' rules: pure functions from (the order's payment state, event) to (state, events).

One JSON record per order (keyed by order_id)::

    {"answer": <the reply to the reservation, as JSON>, "payment_id", "amount_cents",
     "released": <the release reply, as JSON> | None, "refunded": <the refund, as JSON> | None}

A reservation is answered once and, when asked again (an orchestration that lost its state asks with the
same request), answered with the very same reply; a release and a refund give the money back once, and
never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from opengym_streams.codec import build_event
from opengym_streams.event import Event, Handler, Ignored, Result, ignore, not_yet, share_of
from opengym_streams.settings import from_env, knob
from order_fulfilment.models import (DeclineReason, OrderUnfulfillable, PaymentDeclined, PaymentRefunded,
                                     PaymentReleased, PaymentReleaseRequested, PaymentReservationRequested,
                                     PaymentReserved)


@dataclass(frozen=True)
class PaymentsConfig:
    limit_cents: int = knob("OPENGYM_PAYMENTS_LIMIT_CENTS", 50_000,
                            "the card limit: a reservation above it is declined (INSUFFICIENT_FUNDS)")
    decline_share: float = knob("OPENGYM_PAYMENTS_DECLINE_SHARE", 0.0,
                                "share (0..1) of reservations the card issuer declines (CARD_DECLINED), by order id")

    @classmethod
    def from_env(cls) -> "PaymentsConfig":
        return from_env(cls)


def _again(said: dict) -> Event:
    return build_event(said, fill_envelope=False)


def reserve(state: dict | None, event: PaymentReservationRequested, now: int, config: PaymentsConfig) -> Result:
    if state is not None and state.get("answer") is not None:
        return state, [_again(state["answer"])]
    if event.amount_cents > config.limit_cents:
        reply: Event = PaymentDeclined.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                           reason=DeclineReason.INSUFFICIENT_FUNDS)
    elif share_of(event.order_id, "payments-decline") < config.decline_share:
        reply = PaymentDeclined.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                    reason=DeclineReason.CARD_DECLINED)
    else:
        reply = PaymentReserved.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                    payment_id=f"pay-{event.order_id}", amount_cents=event.amount_cents)
    reserved = isinstance(reply, PaymentReserved)
    return {**(state or {}), "answer": reply.to_json_dict(), "payment_id": reply.payment_id if reserved else None,
            "amount_cents": event.amount_cents if reserved else 0}, [reply]


def _given_back(state: dict | None) -> dict | None:
    return (state or {}).get("released") or (state or {}).get("refunded")


def release(state: dict | None, event: PaymentReleaseRequested, now: int) -> Result | Ignored:
    if state is not None and state.get("released") is not None:
        return state, [_again(state["released"])]
    if state is None or state.get("payment_id") != event.payment_id:
        return ignore("no such reservation")
    if _given_back(state):
        return ignore("refunded already")
    released = PaymentReleased.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                   payment_id=event.payment_id, amount_cents=state["amount_cents"])
    return {**state, "released": released.to_json_dict()}, [released]


def refund(state: dict | None, event: OrderUnfulfillable, now: int) -> Result | Ignored:
    if state is None:  # a replay may read the cancellation before the reservation it gives back
        return not_yet("nothing reserved for this order")
    if state.get("payment_id") is None:
        return ignore("nothing reserved for this order")
    if _given_back(state):
        return ignore("given back already")
    refunded = PaymentRefunded.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                   payment_id=state["payment_id"], amount_cents=state["amount_cents"])
    return {**state, "refunded": refunded.to_json_dict()}, [refunded]


def handlers(config: PaymentsConfig) -> dict[str, Handler]:
    return {"PaymentReservationRequested": partial(reserve, config=config),
            "PaymentReleaseRequested": release, "OrderUnfulfillable": refund}
