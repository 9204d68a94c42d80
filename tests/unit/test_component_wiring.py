"""The component registry against everything derived from it, and the layers: the library under
``streams/`` knows no system."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from opengym import topics
from opengym.agents.system import SYSTEM
from opengym_streams.commands.worker import faust_argv
from opengym_streams.component import Agent

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = [c.name for c in SYSTEM.components]


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_registered_component_builds_its_own_app_from_its_module(component):
    spec = SYSTEM.component(component)
    built = importlib.import_module(spec.module).build()
    assert built.name == component and built.metrics_port == spec.metrics_port
    assert built.app.conf.id.endswith(f"opengym-{component}")
    assert built.agents, f"{component} declares no agent"
    for agent in built.runtime.agents.values():
        assert agent.concurrency == 1


def test_every_topic_owner_is_a_registered_component_with_a_dead_letter_topic():
    owners = {t.owner for t in topics.ALL_TOPICS}
    assert owners == set(COMPONENTS), "topics/__init__.py and the registry in agents/system.py disagree"
    assert set(topics.DEAD_LETTERS) == set(COMPONENTS)


def test_an_agent_that_handles_a_type_its_topics_do_not_carry_is_refused():
    with pytest.raises(ValueError, match="handles ReservationConfirmed, which none of its topics carries"):
        Agent("confused", reads=(topics.RESERVATION_COMMANDS,), table="t",
              handlers={"ReservationConfirmed": lambda state, event, now: (state, [])})


def test_internal_topics_are_owned_and_read_by_their_component_only():
    for topic in topics.INTERNAL_TOPICS:
        readers = [c.name for c in SYSTEM.components
                   if topic.name in importlib.import_module(c.module).build().reads()]
        assert readers == [topic.owner]


def test_the_worker_command_runs_the_module_the_registry_names():
    argv = faust_argv("tenant-billing", "warning", ["--foo"])
    assert argv[1:] == ["-A", "opengym.agents.tenant_billing", "worker", "-l", "warn", "--without-web", "--foo"]


def test_importing_a_component_module_builds_nothing():
    import faust

    before = len(faust.App._apps) if hasattr(faust.App, "_apps") else None
    module = importlib.reload(importlib.import_module("opengym.agents.finance"))
    assert "app" not in vars(module), "the app is built when `faust -A` asks for it, not on import"
    assert before is None or len(faust.App._apps) == before


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_under_streams_imports_a_system():
    offenders = {}
    for folder in ("streams", "monitoring"):
        for path in (ROOT / folder).rglob("*.py"):
            bad = sorted(_imports(path) & {"opengym", "agents", "topics", "order_fulfilment"})
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}, "the library is handed a system; it imports none"


def test_nothing_imports_the_directories_by_their_own_names():
    # streams/ is the package opengym_streams, agents/ is opengym.agents, ...: importing a directory by its
    # own name would load a second copy of every module in it.
    offenders = {}
    for path in ROOT.rglob("*.py"):
        if any(part in (".venv", "node_modules", ".git") for part in path.parts):
            continue
        bad = sorted(_imports(path) & {"streams", "agents", "topics", "monitoring", "schemas"})
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
