"""Correlation: order fulfilment's observer. Listens to every topic that carries a fact of the process
catalog, plus its own clock; emits AnomalyDetected on ``shop.correlation.anomalies`` when an order deviates
from its catalog entry, and nothing else. The observer is the library's (:mod:`streams.observe`); this
module hands it the system.

Run: ``opengym --system order-fulfilment worker correlation``.
"""

from __future__ import annotations

from opengym_streams.component import Component, module_app
from opengym_streams.observe import build_observer
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from order_fulfilment.agents.system import SYSTEM

    return build_observer(SYSTEM, settings)


__getattr__ = module_app(build)
