"""Payments: listens to Order's reservation and release requests and to the warehouse's OrderUnfulfillable;
emits the replies PaymentReserved | PaymentDeclined and PaymentReleased, and PaymentRefunded (RefundProcess,
downstream of PickingOrchestration).

``answer`` (payments, keyed by order_id) applies :mod:`order_fulfilment.agents.payments.logic`; a repeated
request is answered with what it was told the first time. Knobs: ``OPENGYM_PAYMENTS_LIMIT_CENTS``,
``OPENGYM_PAYMENTS_DECLINE_SHARE``.

Run: ``opengym --system order-fulfilment worker payments``.
"""

from __future__ import annotations

from opengym_streams.component import Agent, Component, labelled, module_app
from opengym_streams.settings import Settings
from order_fulfilment import topics
from order_fulfilment.agents.payments import logic


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return Component(SYSTEM.component("payments"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("answer", reads=(topics.PAYMENTS_REQUESTS, topics.WAREHOUSE_EVENTS), table="payments", reanswer=True,
              handlers=logic.handlers(logic.PaymentsConfig.from_env()),
              outcomes={"PaymentReserved": "reserved", "PaymentDeclined": labelled("declined", "reason"),
                        "PaymentReleased": "released", "PaymentRefunded": "refunded"}),
    ))


__getattr__ = module_app(build)
