"""Tenant Billing: listens to ReservationConfirmed; emits one BillingLineRecorded per confirmed booking.

Reservation does not know this component exists (a downstream process it owns alone).
Run: ``opengym worker tenant-billing`` or ``faust -A agents.tenant_billing worker -l info``.
"""

from __future__ import annotations

from functools import partial

from opengym import topics
from opengym.agents.tenant_billing import logic
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    config = logic.BillingConfig.from_env()
    return Component(SYSTEM.component("tenant-billing"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("record_billing_line", reads=(topics.RESERVATION_EVENTS,), table="billing-lines",
              handlers={"ReservationConfirmed": partial(logic.on_confirmed, config=config)},
              outcomes={"BillingLineRecorded": "billed"}),
    ))


__getattr__ = module_app(build)
