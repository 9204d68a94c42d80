"""A system, declared once: its topic catalog, its component registry and its process catalog.

The library runs any system; which one comes from ``OPENGYM_SYSTEM`` (the name of an installed entry
point in the ``opengym_streams.systems`` group, ``package.module`` holding a ``SYSTEM``, or
``package.module:NAME``), else from the installed entry point named ``default``. ``opengym --system NAME``
sets it for one command (and the workers that command starts). Everything that needs a system's facts (``opengym`` commands, the
demo, the benches, the observer) is handed the :class:`System`; nothing under ``streams/`` names one.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field, replace
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
    system: "System | None" = field(default=None, compare=False, repr=False)
    """The system whose registry lists it (set by :class:`System`): a component built from it knows its
    contracts without asking ``OPENGYM_SYSTEM``, so ``faust -A <module> worker`` runs it as it is."""


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
    docs: Path | None = None
    """Where the system's generated documents go: ``catalog.md``, ``settings.md`` and
    ``asyncapi/<name>.json`` (``opengym catalog docs``, ``opengym settings docs``, ``opengym catalog asyncapi``)."""
    demo: str | None = None
    """The system's demo: ``package.module`` holding a ``DEMO`` (a :class:`streams.demo.spec.Demo`), or
    ``package.module:NAME``; what ``opengym demo`` and ``opengym bench pipeline`` run."""
    correlation_fields: tuple[str, ...] = ()
    """Payload fields that name a business transaction, in order of preference: an event given to
    ``opengym produce`` without ``correlation_id`` takes the first of these it carries."""
    title: str = ""
    """How documents and pages name the system (default: its name)."""
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(replace(c, system=self) for c in self.components))
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

    @property
    def label(self) -> str:
        return self.title or self.name

    def asyncapi_path(self) -> Path:
        return self.docs_dir() / "asyncapi" / f"{self.name}.json"

    def models_module(self) -> str | None:
        """The dotted name of the generated models file, from the packages it sits in
        (``opengym/models.py`` -> ``opengym.models``); None without one."""
        if self.models is None:
            return None
        path = Path(self.models).resolve()
        parts, folder = [path.stem], path.parent
        while (folder / "__init__.py").exists():
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts)

    def docs_dir(self) -> Path:
        """Where its generated documents go: the directory its declaration names, else ./docs."""
        return Path(self.docs) if self.docs is not None else Path.cwd() / "docs"

    @cached_property
    def catalog(self) -> Catalog:
        """The process catalog as the environment says now (built once per System object)."""
        return self.processes()

    def topic_for_event(self, avro_name: str) -> Topic:
        return self.topics.topic_for_event(avro_name)


def load(spec: str | None = None) -> System:
    """The system named by ``spec``, else by ``OPENGYM_SYSTEM``, else the installed default."""
    return _load(spec or os.environ.get("OPENGYM_SYSTEM", "").strip())


def installed() -> dict[str, str]:
    """Entry point name -> ``package.module:NAME`` of every installed system."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINTS)}


@functools.lru_cache(maxsize=16)
def _load(spec: str) -> System:
    named = installed()
    if not spec:
        if "default" not in named:
            raise LookupError(f"no system: set OPENGYM_SYSTEM=package.module, or install one with an entry "
                              f"point named 'default' in the {ENTRY_POINTS!r} group")
        spec = "default"
    spec = named.get(spec, spec)
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LookupError(f"no system {spec!r}: not an installed system ({', '.join(sorted(named))}) nor an "
                              "importable package.module") from None
        raise
    system = getattr(module, attr or "SYSTEM", None)
    if not isinstance(system, System):
        raise LookupError(f"{spec}: {module_name}.{attr or 'SYSTEM'} is not a streams.system.System")
    import_models(system)
    return system


def import_models(system: System) -> None:
    """Load the system's event models with it: the codec and ``opengym produce`` find a record's model by
    its name among the models loaded, whether or not the system's own modules import them."""
    name = system.models_module()
    if name is None:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not name.startswith(exc.name):
            raise  # the models import something that is missing: say so
        # Not generated yet (`opengym contracts generate` makes it), or not importable under that name.
