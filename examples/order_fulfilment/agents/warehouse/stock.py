"""The stock keeper: one article's stock, changed only by events keyed by its sku.

Orders are keyed by order_id and spread over every partition, so no order partition can count an
article's units. The picking orchestration therefore repartitions its stock requests by sku onto
``shop.warehouse.stock``; all of one article's units are decided by one agent, one event at a time, and
it is never oversold. State, one JSON record per sku::

    {"sku", "bin", "on_hand", "reserved": {order_id: units}, "released": [order ids],
     "answers": {order_id: <the reply, as JSON>}, "receipts": {event id: <StockReceived, as JSON>}}

A request is answered again with the very answer it got (same id, same content), however often it is
asked: an orchestration that lost its state in a crash asks again and must hear the same thing.
"""

from __future__ import annotations

from opengym_streams.codec import build_event
from opengym_streams.event import Ignored, Result, ignore
from order_fulfilment.models import (ReceiveStockRequested, StockReceived, StockReleaseRequested,
                                     StockReservationRequested, StockReserved, StockShort)


def _new(sku: str) -> dict:
    return {"sku": sku, "bin": None, "on_hand": 0, "reserved": {}, "released": [], "answers": {}, "receipts": {}}


def available(state: dict | None) -> int:
    return (state["on_hand"] - sum(state["reserved"].values())) if state else 0


def receive(state: dict | None, event: ReceiveStockRequested, now: int) -> Result:
    article = state or _new(event.sku)
    said = article["receipts"].get(event.event_id)
    if said is not None:
        return article, [build_event(said, fill_envelope=False)]
    on_hand = article["on_hand"] + event.quantity
    received = StockReceived.new(caused_by=event, occurred_at=now, sku=event.sku, quantity=event.quantity,
                                 bin=event.bin, on_hand=on_hand)
    return {**article, "bin": event.bin, "on_hand": on_hand,
            "receipts": {**article["receipts"], event.event_id: received.to_json_dict()}}, [received]


def reserve(state: dict | None, event: StockReservationRequested, now: int) -> Result | Ignored:
    article = state or _new(event.sku)
    if event.order_id in article["released"]:
        return ignore("the order gave its units back")
    said = article["answers"].get(event.order_id)
    if said is not None:
        return article, [build_event(said, fill_envelope=False)]
    left = available(article)
    if article["bin"] is not None and event.quantity <= left:
        answer = StockReserved.new(caused_by=event, occurred_at=now, order_id=event.order_id, sku=event.sku,
                                   quantity=event.quantity, bin=article["bin"])
        reserved = {**article["reserved"], event.order_id: event.quantity}
    else:
        answer = StockShort.new(caused_by=event, occurred_at=now, order_id=event.order_id, sku=event.sku,
                                requested=event.quantity, available=max(0, left))
        reserved = article["reserved"]
    return {**article, "reserved": reserved,
            "answers": {**article["answers"], event.order_id: answer.to_json_dict()}}, [answer]


def release(state: dict | None, event: StockReleaseRequested, now: int) -> Result | Ignored:
    if state is None or event.order_id not in state["reserved"]:
        return ignore("no units set aside for this order")
    return ({**state, "reserved": {k: v for k, v in state["reserved"].items() if k != event.order_id},
             "released": [*state["released"], event.order_id]}, [])


HANDLERS = {"ReceiveStockRequested": receive, "StockReservationRequested": reserve, "StockReleaseRequested": release}
