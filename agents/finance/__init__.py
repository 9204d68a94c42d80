"""Finance: listens to SettlementObligationCalculated; emits PaymentInitiated, then PaymentSettled |
PaymentFailed from a simulated gateway (``OPENGYM_PAYMENT_FAILURE_RATE``, default 0).

Run: ``opengym worker finance`` or ``faust -A agents.finance worker -l info``.
"""

from __future__ import annotations

from functools import partial

from opengym import topics
from opengym.agents.finance import logic
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    config = logic.GatewayConfig.from_env()
    return Component(SYSTEM.component("finance"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("pay", reads=(topics.PLATFORM_BILLING_EVENTS,), table="payments",
              handlers={"SettlementObligationCalculated": partial(logic.on_obligation, config=config)},
              outcomes={"PaymentSettled": "settled", "PaymentFailed": "failed"}),
    ))


__getattr__ = module_app(build)
