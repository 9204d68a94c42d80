"""PickingOrchestration, stated once: the warehouse's step table. Warehouse does not orchestrate the order
(nobody commands it to pick: it reacts to OrderPlaced, a fact of the choreography), but inside, picking has
one owner that knows the steps, waits, times out and undoes: an orchestration.

An order is keyed by order_id. Each pick deadline runs from its own request; the stock step's backstop
from the trigger.

| step | participant | request | replies | waits in | deadline | compensation |
| --- | --- | --- | --- | --- | --- | --- |
| ReserveStock | the stock keeper (same app, by sku) | StockReservationRequested | StockReserved, StockShort | RESERVING_STOCK | ``OPENGYM_WAREHOUSE_STOCK_WAIT_MS`` backstop -> UNKNOWN | StockReleaseRequested |
| AssignPicker | Pickers | PickerAssignmentRequested | PickerAssigned, NoPickerAvailable | ASSIGNING_PICKER | ``OPENGYM_WAREHOUSE_ASSIGN_TIMEOUT_MS`` -> PICKER_TIMEOUT | - |
| ConfirmPick | Pickers | PickRequested | PickConfirmed, PickFailed | PICKING | ``OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS`` -> PICK_TIMEOUT; a reply dated later is a timeout too | PickReturnRequested |
"""

from __future__ import annotations

from dataclasses import dataclass

from opengym_streams.catalog import Compensation, Orchestration, Step, Terminal, fails, succeeds
from opengym_streams.component import labelled
from opengym_streams.settings import env_ms, from_env, knob
from order_fulfilment.models import (OrderPicked, OrderUnfulfillable, PickerAssignmentRequested, PickRequested,
                                     PickReturnRequested, StockReleaseRequested, StockReservationRequested,
                                     UnfulfillableReason)

SECOND = 1000

RESERVING_STOCK = "RESERVING_STOCK"
ASSIGNING_PICKER = "ASSIGNING_PICKER"
PICKING = "PICKING"
PICKED = "PICKED"
UNFULFILLABLE = "UNFULFILLABLE"


@dataclass(frozen=True)
class PickingConfig:
    stock_wait_ms: int = knob("OPENGYM_WAREHOUSE_STOCK_WAIT_MS", 60_000,
                              "backstop for the stock step: only a request lost to a dead letter waits this long")
    assign_timeout_ms: int = knob("OPENGYM_WAREHOUSE_ASSIGN_TIMEOUT_MS", 5000,
                                  "the warehouse's deadline for a picker assignment, from its request")
    pick_timeout_ms: int = knob("OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS", 10_000,
                                "the warehouse's deadline for the pick confirmation, from the pick request")

    @classmethod
    def from_env(cls) -> "PickingConfig":
        return from_env(cls)


def _start(placed) -> dict:
    return {"order_id": placed.order_id, "customer_id": placed.customer_id, "sku": placed.sku,
            "quantity": placed.quantity}


def _reserve(data: dict, cause, now: int) -> StockReservationRequested:
    return StockReservationRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"], sku=data["sku"],
                                         quantity=data["quantity"])


def _release(data: dict, cause, now: int) -> StockReleaseRequested:
    return StockReleaseRequested.new(caused_by=cause, correlation_id=data["order_id"], discriminator=data["order_id"],
                                     occurred_at=now, order_id=data["order_id"], sku=data["sku"],
                                     quantity=data["quantity"])


def _assign(data: dict, cause, now: int) -> PickerAssignmentRequested:
    return PickerAssignmentRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"], sku=data["sku"],
                                         quantity=data["quantity"], bin=data["bin"])


def _pick(data: dict, cause, now: int) -> PickRequested:
    return PickRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"], picker_id=data["picker_id"],
                             sku=data["sku"], quantity=data["quantity"], bin=data["bin"])


def _put_back(data: dict, cause, now: int) -> PickReturnRequested:
    return PickReturnRequested.new(caused_by=cause, occurred_at=now, order_id=data["order_id"],
                                   picker_id=data["picker_id"], sku=data["sku"], quantity=data["quantity"])


def _picked(data: dict, cause, now: int) -> OrderPicked:
    return OrderPicked.new(caused_by=cause, occurred_at=now, order_id=data["order_id"], customer_id=data["customer_id"],
                           sku=data["sku"], quantity=data["quantity"], picker_id=data["picker_id"])


def _unfulfillable(data: dict, cause, now: int, reason) -> OrderUnfulfillable:
    return OrderUnfulfillable.new(caused_by=cause, correlation_id=data["order_id"], discriminator=data["order_id"],
                                  occurred_at=now, order_id=data["order_id"], customer_id=data["customer_id"],
                                  sku=data["sku"], reason=reason)


def orchestration(config: PickingConfig | None = None) -> Orchestration:
    config = config or PickingConfig.from_env()
    return Orchestration(
        "PickingOrchestration", owner="warehouse", trigger="OrderPlaced", start=_start,
        steps=(
            Step("ReserveStock", participant="warehouse", request="StockReservationRequested", ask=_reserve,
                 replies=(succeeds("StockReserved", keep=lambda e: {"bin": e.bin}),
                          fails("StockShort", lambda e: UnfulfillableReason.OUT_OF_STOCK)),
                 waits_in=RESERVING_STOCK, deadline_ms=config.stock_wait_ms, on_timeout=UnfulfillableReason.UNKNOWN,
                 compensation=Compensation("StockReleaseRequested", _release),
                 doc="Set the units aside against the article's stock (the stock keeper, keyed by sku); not enough "
                     "left ends the picking at once: out of stock."),
            Step("AssignPicker", participant="pickers", request="PickerAssignmentRequested", ask=_assign,
                 process="PickerAssignmentProcess", deadline_from="request",
                 replies=(succeeds("PickerAssigned", keep=lambda e: {"picker_id": e.picker_id}),
                          fails("NoPickerAvailable", lambda e: UnfulfillableReason.NO_PICKER)),
                 waits_in=ASSIGNING_PICKER, deadline_ms=config.assign_timeout_ms,
                 on_timeout=UnfulfillableReason.PICKER_TIMEOUT,
                 doc="Ask the pickers' system for a free picker; control returns."),
            Step("ConfirmPick", participant="pickers", request="PickRequested", ask=_pick,
                 process="PickConfirmationProcess", deadline_from="request",
                 replies=(succeeds("PickConfirmed"),
                          fails("PickFailed", lambda e: UnfulfillableReason.ITEM_DAMAGED)),
                 waits_in=PICKING, deadline_ms=config.pick_timeout_ms, on_timeout=UnfulfillableReason.PICK_TIMEOUT,
                 late_reply="time_out",
                 compensation=Compensation(
                     "PickReturnRequested", _put_back, process="PickReturnProcess", replies=("PickReturned",),
                     deadline_ms=env_ms("PICK_RETURN_PROCESS_DEADLINE", 30 * SECOND,
                                        "how long a picker may take to put back a pick that came too late"),
                     outcome="late_pick_returned",
                     doc="Put back units picked after the warehouse gave up (the stock was released already)."),
                 doc="Send the pick list to the picker's handheld and wait for the confirmation; control returns."),
        ),
        succeeded=Terminal("OrderPicked", _picked, "picked"),
        failed=Terminal("OrderUnfulfillable", _unfulfillable, labelled("unfulfillable", "reason")),
        succeeded_phase=PICKED, failed_phase=UNFULFILLABLE,
        doc="Warehouse owns the picking from OrderPlaced to its terminal event.",
    )
