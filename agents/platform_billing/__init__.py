"""Platform Billing: listens to AttendanceRecorded (partner visits) and to Finance's payment outcomes;
emits SettlementObligationCalculated, then SettlementConfirmed | SettlementEscalated.

Run: ``opengym worker platform-billing`` or ``faust -A agents.platform_billing worker -l info``.
"""

from __future__ import annotations

from opengym import topics
from opengym.agents.platform_billing import logic
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    return Component(SYSTEM.component("platform-billing"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("settle", reads=(topics.ATTENDANCE_EVENTS, topics.FINANCE_EVENTS), table="settlements",
              handlers=logic.handlers(logic.SettlementConfig.from_env()),
              outcomes={"SettlementObligationCalculated": "obligation", "SettlementConfirmed": "confirmed",
                        "SettlementEscalated": "escalated"}),
    ))


__getattr__ = module_app(build)
