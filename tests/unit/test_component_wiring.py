"""Every component's agents against the topic catalog: what they read, what they accept, what they write."""

from __future__ import annotations

import importlib

import pytest

import topics
from streams.commands.worker import COMPONENT_MODULES, faust_argv

COMPONENTS = sorted(COMPONENT_MODULES)


def short(avro_name: str) -> str:
    return avro_name.rsplit(".", 1)[-1]


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_agent_accepts_exactly_what_its_topics_carry(component):
    module = importlib.import_module(COMPONENT_MODULES[component])
    assert module.app.conf.id.endswith(f"opengym-{component}")
    assert module.rt.subscriptions, f"{component} has no agent"
    for name, (sources, accepted) in module.rt.subscriptions.items():
        carried = {short(e) for topic in sources for e in topic.events}
        assert accepted == carried, (
            f"{component}.{name}: accepts {sorted(accepted)} but its topics carry {sorted(carried)}; an event "
            "the topic may carry would be dead-lettered, or one it may not would be handled")


@pytest.mark.parametrize("component", COMPONENTS)
def test_agents_are_single_and_sequential(component):
    module = importlib.import_module(COMPONENT_MODULES[component])
    for agent in module.rt.agents.values():
        assert agent.concurrency == 1


def test_internal_topics_are_owned_and_read_by_their_component_only():
    for topic in topics.INTERNAL_TOPICS:
        readers = [c for c in COMPONENTS
                   if any(topic in sources for sources, _ in
                          importlib.import_module(COMPONENT_MODULES[c]).rt.subscriptions.values())]
        assert readers == [topic.owner]


def test_the_worker_command_runs_the_component_module():
    argv = faust_argv("tenant-billing", "warning", ["--foo"])
    assert argv[1:] == ["-A", "agents.tenant_billing", "worker", "-l", "warn", "--without-web", "--foo"]


def test_a_paused_notifications_worker_subscribes_to_nothing(monkeypatch):
    import agents.notifications as notifications

    monkeypatch.setenv("OPENGYM_NOTIFICATIONS_PAUSED", "1")
    try:
        paused = importlib.reload(notifications)
        assert paused.PAUSED and paused.rt.subscriptions == {}
    finally:
        monkeypatch.delenv("OPENGYM_NOTIFICATIONS_PAUSED")
        running = importlib.reload(notifications)
    assert not running.PAUSED and set(running.rt.subscriptions) == {"notify"}
