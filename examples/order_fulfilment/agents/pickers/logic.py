"""The pickers' system: pure functions from (the order's pick state, event) to (state, events).

One JSON record per order (keyed by order_id)::

    {"assigned": <the assignment reply, as JSON>, "picked": <the pick reply, as JSON> | None,
     "held": [{"due_at", "event": <a reply, as JSON>}], "lost": bool, "returned": <PickReturned, as JSON> | None}

A pick takes the picker time: its confirmation is held in state until a tick says the time has come
(``OPENGYM_PICKERS_PICK_MS``; never a sleep). The fault knobs, each a share of orders chosen by order id so
reruns agree: every picker busy (``BUSY_SHARE``), a damaged article (``DAMAGED_SHARE``), a pick confirmed
after ``LATE_MS`` (``LATE_SHARE``: the warehouse has given up by then, and asks for the units back), and a
handheld that never answers (``LOST_SHARE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from opengym_streams.codec import build_event
from opengym_streams.event import Event, Handler, Ignored, Result, ignore, share_of
from opengym_streams.models import ClockTicked
from opengym_streams.settings import from_env, knob
from order_fulfilment.models import (NoPickerAvailable, PickConfirmed, PickerAssigned, PickerAssignmentRequested,
                                     PickFailed, PickFailure, PickRequested, PickReturned, PickReturnRequested)


@dataclass(frozen=True)
class PickersConfig:
    pickers: int = knob("OPENGYM_PICKERS_COUNT", 8, "how many pickers work the floor")
    pick_ms: int = knob("OPENGYM_PICKERS_PICK_MS", 200, "how long a pick takes (held in state, released by a tick)")
    busy_share: float = knob("OPENGYM_PICKERS_BUSY_SHARE", 0.0,
                             "share (0..1) of orders for which every picker is busy (NoPickerAvailable)")
    damaged_share: float = knob("OPENGYM_PICKERS_DAMAGED_SHARE", 0.0,
                                "share (0..1) of picks that find the article damaged (PickFailed)")
    late_share: float = knob("OPENGYM_PICKERS_LATE_SHARE", 0.0,
                             "share (0..1) of picks confirmed late, after OPENGYM_PICKERS_LATE_MS")
    late_ms: int = knob("OPENGYM_PICKERS_LATE_MS", 15_000, "how late a late pick is confirmed")
    lost_share: float = knob("OPENGYM_PICKERS_LOST_SHARE", 0.0,
                             "share (0..1) of picks whose handheld never answers")

    @classmethod
    def from_env(cls) -> "PickersConfig":
        return from_env(cls)

    def chance(self, order_id: str, what: str) -> float:
        return share_of(order_id, f"pickers-{what}")


def _again(said: dict) -> Event:
    return build_event(said, fill_envelope=False)


def assign(state: dict | None, event: PickerAssignmentRequested, now: int, config: PickersConfig) -> Result:
    if state is not None and state.get("assigned") is not None:
        return state, [_again(state["assigned"])]
    if config.chance(event.order_id, "busy") < config.busy_share:
        reply: Event = NoPickerAvailable.new(caused_by=event, occurred_at=now, order_id=event.order_id)
    else:
        picker = int(config.chance(event.order_id, "who") * config.pickers)
        reply = PickerAssigned.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                   picker_id=f"picker-{picker + 1}")
    return {**(state or {}), "assigned": reply.to_json_dict()}, [reply]


def pick(state: dict | None, event: PickRequested, now: int, config: PickersConfig) -> Result | Ignored:
    order = state or {}
    if order.get("picked") is not None:
        return order, [_again(order["picked"])]
    if order.get("lost") or any(held["event"]["type"] in ("PickConfirmed", "PickFailed") for held in order.get("held", ())):
        return ignore("the pick is under way")
    if config.chance(event.order_id, "lost") < config.lost_share:
        return {**order, "lost": True}, []
    if config.chance(event.order_id, "damaged") < config.damaged_share:
        reply: Event = PickFailed.new(caused_by=event, occurred_at=now, order_id=event.order_id,
                                      picker_id=event.picker_id, reason=PickFailure.ITEM_DAMAGED)
        return {**order, "picked": reply.to_json_dict()}, [reply]
    late = config.chance(event.order_id, "late") < config.late_share
    done_at = now + (config.late_ms if late else config.pick_ms)
    reply = PickConfirmed.new(caused_by=event, occurred_at=done_at, order_id=event.order_id, picker_id=event.picker_id,
                              sku=event.sku, quantity=event.quantity)
    if done_at <= now:
        return {**order, "picked": reply.to_json_dict()}, [reply]
    return {**order, "held": [*order.get("held", []), {"due_at": done_at, "event": reply.to_json_dict()}]}, []


def put_back(state: dict | None, event: PickReturnRequested, now: int) -> Result | Ignored:
    if state is not None and state.get("returned") is not None:
        return state, [_again(state["returned"])]
    returned = PickReturned.new(caused_by=event, occurred_at=now, order_id=event.order_id, picker_id=event.picker_id,
                                sku=event.sku, quantity=event.quantity)
    return {**(state or {}), "returned": returned.to_json_dict()}, [returned]


def finish(state: dict, tick: ClockTicked, now: int) -> Result | Ignored:
    """The picks whose time has come are confirmed."""
    due = [held for held in state.get("held", ()) if held["due_at"] <= now]
    if not due:
        return ignore("no pick is due")
    replies = [_again(held["event"]) for held in due]
    return ({**state, "picked": due[-1]["event"], "held": [h for h in state["held"] if h["due_at"] > now]}, replies)


def wake_at(state: dict) -> int | None:
    """When a tick can next change this order: its held confirmation's time."""
    return min((held["due_at"] for held in state.get("held", ())), default=None)


def handlers(config: PickersConfig) -> dict[str, Handler]:
    return {"PickerAssignmentRequested": partial(assign, config=config), "PickRequested": partial(pick, config=config),
            "PickReturnRequested": put_back, "ClockTicked": finish}
