"""A system, declared once: its topic catalog, its component registry and its process catalog.

The library runs any system; which one comes from ``OPENGYM_SYSTEM`` (``package.module`` holding a
``SYSTEM``, or ``package.module:NAME``), else from the installed entry point named ``default`` in the
``opengym_streams.systems`` group. Everything that needs a system's facts (``opengym`` commands, the
demo, the benches, the observer) is handed the :class:`System`; nothing under ``streams/`` names one.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Callable

from opengym_streams.catalog import Catalog
from opengym_streams.topic import Topic, TopicCatalog

ENTRY_POINTS = "opengym_streams.systems"


@dataclass(frozen=True)
class ComponentSpec:
    """One line of the component registry."""

    name: str
    module: str
    """The module whose ``app`` is the component's Faust app (``faust -A <module> worker``)."""
    metrics_port: int
    observer: bool = False
    """The correlation observer: it reads everything and publishes only its anomalies."""
    doc: str = ""


@dataclass(frozen=True)
class System:
    name: str
    topics: TopicCatalog
    components: tuple[ComponentSpec, ...]
    processes: Callable[[], Catalog] = field(compare=False)
    """Builds the process catalog (reading its duration knobs from the environment at that moment)."""
    schemas: Path | None = None
    """The directory of the system's contracts (``<owner>/<Event>.avsc``)."""
    namespace: str = "opengym"
    """Its records' namespace prefix: ``<namespace>.<owner>.<Event>``."""
    models: Path | None = None
    """Where ``opengym contracts generate`` writes the system's event models."""
    runbook: Path | None = None
    """The runbook its alerts and the observer's UI link to (Markdown, a section per alert)."""
    knobs: Callable[[], tuple[type, ...]] = field(default=tuple, compare=False)
    """The knob dataclasses of the system's components (for the generated table of every knob)."""
    doc: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: two components share a name")
        ports = [c.metrics_port for c in self.components]
        if len(set(ports)) != len(ports):
            raise ValueError(f"{self.name}: two components share a metrics port")

    def component(self, name: str) -> ComponentSpec:
        for spec in self.components:
            if spec.name == name:
                return spec
        raise KeyError(f"{name!r} is not a component of {self.name} ({', '.join(self.names)})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    @property
    def workers(self) -> tuple[ComponentSpec, ...]:
        """The components that take part in the business (everything but the observer)."""
        return tuple(c for c in self.components if not c.observer)

    @property
    def observer(self) -> ComponentSpec | None:
        return next((c for c in self.components if c.observer), None)

    @cached_property
    def catalog(self) -> Catalog:
        """The process catalog as the environment says now (built once per System object)."""
        return self.processes()

    def topic_for_event(self, avro_name: str) -> Topic:
        return self.topics.topic_for_event(avro_name)


def load(spec: str | None = None) -> System:
    """The system named by ``spec``, else by ``OPENGYM_SYSTEM``, else the installed default."""
    return _load(spec or os.environ.get("OPENGYM_SYSTEM", "").strip())


@functools.lru_cache(maxsize=16)
def _load(spec: str) -> System:
    if not spec:
        found = [ep for ep in metadata.entry_points(group=ENTRY_POINTS) if ep.name == "default"]
        if not found:
            raise LookupError(f"no system: set OPENGYM_SYSTEM=package.module, or install one with an entry "
                              f"point named 'default' in the {ENTRY_POINTS!r} group")
        spec = found[0].value
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    system = getattr(module, attr or "SYSTEM", None)
    if not isinstance(system, System):
        raise LookupError(f"{spec}: {module_name}.{attr or 'SYSTEM'} is not a streams.system.System")
    return system
