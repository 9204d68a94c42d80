"""Correlation: OpenGym's observer. Listens to every topic that carries a catalog fact, plus its own clock;
emits AnomalyDetected on ``opengym.correlation.anomalies`` when a transaction deviates from its catalog
entry, and nothing else: it observes, it never drives. The observer itself is the library's
(:mod:`streams.observe`); this module hands it OpenGym.

Run: ``opengym worker correlation`` or ``faust -A agents.correlation worker -l info``.
"""

from __future__ import annotations

from opengym_streams.component import Component, module_app
from opengym_streams.observe import build_observer
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    return build_observer(SYSTEM, settings)


__getattr__ = module_app(build)
