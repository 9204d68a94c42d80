"""Shared fixtures: the real stack once per run, isolated topics and ids per test.

Tiers are markers, applied by directory: tests/unit -> unit, tests/agent -> agent,
tests/integration -> integration.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

TIERS = {"unit": "unit", "agent": "agent", "integration": "integration"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, TIERS[tier]))


@pytest.fixture(scope="session")
def stack():
    """The real broker and registry: reused when already up, else started (and stopped at the end)."""
    from opengym_streams import stack as stack_mod
    from opengym_streams.settings import get_settings

    if stack_mod.is_up():
        yield stack_mod
        return
    result = stack_mod.up()
    yield stack_mod
    started_here = any(state == "started" for state in result.values())
    if started_here and not get_settings().keep_stack:
        stack_mod.down()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Ids that no other test (or earlier run) uses: unique('booking') -> 'booking-3f2a...'."""
    run = uuid.uuid4().hex[:8]

    def make(prefix: str) -> str:
        return f"{prefix}-{run}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def topic_prefix(stack, monkeypatch) -> str:
    """Run this test against its own copy of every catalog topic (OPENGYM_TOPIC_PREFIX)."""
    from opengym_streams.kafka import create_topics

    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
    create_topics()
    return prefix


@pytest.fixture
def scratch_topic(stack) -> Callable[..., str]:
    """A fresh topic outside the catalog: scratch_topic('garbage', partitions=1) -> its name."""
    from confluent_kafka.admin import NewTopic

    from opengym_streams.kafka import admin

    def make(name: str = "scratch", partitions: int = 1) -> str:
        full = f"test.{name}.{uuid.uuid4().hex[:10]}"
        for future in admin().create_topics([NewTopic(full, partitions, 1)]).values():
            future.result(30)
        return full

    return make


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2,
             seen: Callable[[], object] | None = None):
    """Poll ``condition`` until it is truthy or ``timeout`` passes; fail saying what was expected
    and what was last seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    observed = seen() if seen is not None else last
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {observed!r}")
