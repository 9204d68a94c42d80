"""Event models derived from the order-fulfilment system's schemas/**/*.avsc by streams.modelgen. DO NOT EDIT.

Regenerate with `opengym contracts generate`; a unit test fails when this file drifts.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar

from pydantic import StrictBool, StrictInt, StrictStr

from opengym_streams.event import Event


class DeclineReason(str, Enum):
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    CARD_DECLINED = "CARD_DECLINED"
    UNKNOWN = "UNKNOWN"


class OrderRejection(str, Enum):
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    CARD_DECLINED = "CARD_DECLINED"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"
    UNKNOWN = "UNKNOWN"


class PickFailure(str, Enum):
    ITEM_DAMAGED = "ITEM_DAMAGED"
    UNKNOWN = "UNKNOWN"


class ReleaseCause(str, Enum):
    LATE_RESERVATION = "LATE_RESERVATION"
    UNKNOWN = "UNKNOWN"


class UnfulfillableReason(str, Enum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    NO_PICKER = "NO_PICKER"
    PICKER_TIMEOUT = "PICKER_TIMEOUT"
    PICK_TIMEOUT = "PICK_TIMEOUT"
    ITEM_DAMAGED = "ITEM_DAMAGED"
    UNKNOWN = "UNKNOWN"


class CancellationNoticeSent(Event):
    """The customer is told the order cannot be fulfilled and the money comes back."""

    avro_name: ClassVar[str] = "shop.notifications.CancellationNoticeSent"
    owner: ClassVar[str] = "notifications"
    order_id: StrictStr
    customer_id: StrictStr


class OrderConfirmationSent(Event):
    """The customer is told the order stands."""

    avro_name: ClassVar[str] = "shop.notifications.OrderConfirmationSent"
    owner: ClassVar[str] = "notifications"
    order_id: StrictStr
    customer_id: StrictStr
    template: StrictStr


class ShipmentNotificationSent(Event):
    """The customer is told the parcel is on its way."""

    avro_name: ClassVar[str] = "shop.notifications.ShipmentNotificationSent"
    owner: ClassVar[str] = "notifications"
    order_id: StrictStr
    customer_id: StrictStr
    tracking_number: StrictStr


class OrderPlaced(Event):
    """Terminal of OrderPlacementOrchestration: the payment is reserved and the order stands."""

    avro_name: ClassVar[str] = "shop.order.OrderPlaced"
    owner: ClassVar[str] = "order"
    order_id: StrictStr
    customer_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    amount_cents: StrictInt
    payment_id: StrictStr


class OrderRejected(Event):
    """Terminal of OrderPlacementOrchestration: the order was refused."""

    avro_name: ClassVar[str] = "shop.order.OrderRejected"
    owner: ClassVar[str] = "order"
    order_id: StrictStr
    customer_id: StrictStr
    reason: OrderRejection


class PlaceOrderRequested(Event):
    """A customer asks to place an order (correlation_id = order_id)."""

    avro_name: ClassVar[str] = "shop.order.PlaceOrderRequested"
    owner: ClassVar[str] = "order"
    order_id: StrictStr
    customer_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    amount_cents: StrictInt


class PaymentDeclined(Event):
    """Reply: the reservation was refused."""

    avro_name: ClassVar[str] = "shop.payments.PaymentDeclined"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    reason: DeclineReason


class PaymentRefunded(Event):
    """Payments gives the money back for an order the warehouse could not fulfil."""

    avro_name: ClassVar[str] = "shop.payments.PaymentRefunded"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    payment_id: StrictStr
    amount_cents: StrictInt


class PaymentReleaseRequested(Event):
    """Order gives back a reservation that came after it gave up (compensation)."""

    avro_name: ClassVar[str] = "shop.payments.PaymentReleaseRequested"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    payment_id: StrictStr
    reason: ReleaseCause


class PaymentReleased(Event):
    """Reply: the reservation is released."""

    avro_name: ClassVar[str] = "shop.payments.PaymentReleased"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    payment_id: StrictStr
    amount_cents: StrictInt


class PaymentReservationRequested(Event):
    """Order asks Payments to reserve the order's amount (nested request)."""

    avro_name: ClassVar[str] = "shop.payments.PaymentReservationRequested"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    customer_id: StrictStr
    amount_cents: StrictInt


class PaymentReserved(Event):
    """Reply: the amount is reserved on the customer's card."""

    avro_name: ClassVar[str] = "shop.payments.PaymentReserved"
    owner: ClassVar[str] = "payments"
    order_id: StrictStr
    payment_id: StrictStr
    amount_cents: StrictInt


class NoPickerAvailable(Event):
    """Reply: every picker is busy."""

    avro_name: ClassVar[str] = "shop.pickers.NoPickerAvailable"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr


class PickConfirmed(Event):
    """Reply: the picker has the units in the tote."""

    avro_name: ClassVar[str] = "shop.pickers.PickConfirmed"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr
    sku: StrictStr
    quantity: StrictInt


class PickFailed(Event):
    """Reply: the picker could not pick the units."""

    avro_name: ClassVar[str] = "shop.pickers.PickFailed"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr
    reason: PickFailure


class PickRequested(Event):
    """Warehouse sends the pick list to the assigned picker's handheld (nested request)."""

    avro_name: ClassVar[str] = "shop.pickers.PickRequested"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    bin: StrictStr


class PickReturnRequested(Event):
    """Warehouse asks a picker to put back units picked after it gave up (compensation)."""

    avro_name: ClassVar[str] = "shop.pickers.PickReturnRequested"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr
    sku: StrictStr
    quantity: StrictInt


class PickReturned(Event):
    """Reply: the units are back on the shelf."""

    avro_name: ClassVar[str] = "shop.pickers.PickReturned"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr
    sku: StrictStr
    quantity: StrictInt


class PickerAssigned(Event):
    """Reply: a picker takes the order."""

    avro_name: ClassVar[str] = "shop.pickers.PickerAssigned"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    picker_id: StrictStr


class PickerAssignmentRequested(Event):
    """Warehouse asks for a picker for an order (nested request)."""

    avro_name: ClassVar[str] = "shop.pickers.PickerAssignmentRequested"
    owner: ClassVar[str] = "pickers"
    order_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    bin: StrictStr


class LabelGenerated(Event):
    """The carrier's label is printed (LabelGeneration completes)."""

    avro_name: ClassVar[str] = "shop.shipping.LabelGenerated"
    owner: ClassVar[str] = "shipping"
    order_id: StrictStr
    shipment_id: StrictStr
    customer_id: StrictStr
    tracking_number: StrictStr
    carrier: StrictStr


class ShipmentCancelled(Event):
    """Nothing will ship for an order the warehouse could not fulfil."""

    avro_name: ClassVar[str] = "shop.shipping.ShipmentCancelled"
    owner: ClassVar[str] = "shipping"
    order_id: StrictStr
    customer_id: StrictStr


class ShipmentCreated(Event):
    """Shipping opens a shipment for a picked order (LabelGeneration starts)."""

    avro_name: ClassVar[str] = "shop.shipping.ShipmentCreated"
    owner: ClassVar[str] = "shipping"
    order_id: StrictStr
    shipment_id: StrictStr
    customer_id: StrictStr


class OrderPicked(Event):
    """Terminal of PickingOrchestration: the order's units are picked and packed."""

    avro_name: ClassVar[str] = "shop.warehouse.OrderPicked"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    customer_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    picker_id: StrictStr


class OrderUnfulfillable(Event):
    """Terminal of PickingOrchestration: the warehouse cannot fulfil the order."""

    avro_name: ClassVar[str] = "shop.warehouse.OrderUnfulfillable"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    customer_id: StrictStr
    sku: StrictStr
    reason: UnfulfillableReason


class ReceiveStockRequested(Event):
    """Goods in: units of an article arrive at a bin (correlation_id = sku)."""

    avro_name: ClassVar[str] = "shop.warehouse.ReceiveStockRequested"
    owner: ClassVar[str] = "warehouse"
    sku: StrictStr
    quantity: StrictInt
    bin: StrictStr


class StockReceived(Event):
    """The units are on the shelf."""

    avro_name: ClassVar[str] = "shop.warehouse.StockReceived"
    owner: ClassVar[str] = "warehouse"
    sku: StrictStr
    quantity: StrictInt
    bin: StrictStr
    on_hand: StrictInt


class StockReleaseRequested(Event):
    """Internal: units set aside for an order that will not be picked go back (compensation)."""

    avro_name: ClassVar[str] = "shop.warehouse.StockReleaseRequested"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    sku: StrictStr
    quantity: StrictInt


class StockReservationRequested(Event):
    """Internal: the picking orchestration asks the stock keeper for units of an article."""

    avro_name: ClassVar[str] = "shop.warehouse.StockReservationRequested"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    sku: StrictStr
    quantity: StrictInt


class StockReserved(Event):
    """Internal reply: the units are set aside for the order."""

    avro_name: ClassVar[str] = "shop.warehouse.StockReserved"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    sku: StrictStr
    quantity: StrictInt
    bin: StrictStr


class StockShort(Event):
    """Internal reply: not enough units left."""

    avro_name: ClassVar[str] = "shop.warehouse.StockShort"
    owner: ClassVar[str] = "warehouse"
    order_id: StrictStr
    sku: StrictStr
    requested: StrictInt
    available: StrictInt


ALL_EVENTS: tuple[type[Event], ...] = (
    CancellationNoticeSent,
    LabelGenerated,
    NoPickerAvailable,
    OrderConfirmationSent,
    OrderPicked,
    OrderPlaced,
    OrderRejected,
    OrderUnfulfillable,
    PaymentDeclined,
    PaymentRefunded,
    PaymentReleaseRequested,
    PaymentReleased,
    PaymentReservationRequested,
    PaymentReserved,
    PickConfirmed,
    PickFailed,
    PickRequested,
    PickReturnRequested,
    PickReturned,
    PickerAssigned,
    PickerAssignmentRequested,
    PlaceOrderRequested,
    ReceiveStockRequested,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentNotificationSent,
    StockReceived,
    StockReleaseRequested,
    StockReservationRequested,
    StockReserved,
    StockShort,
)
BY_AVRO_NAME: dict[str, type[Event]] = {cls.avro_name: cls for cls in ALL_EVENTS}
BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}
