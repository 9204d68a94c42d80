"""The second system's demo, end to end, as a user runs it: ``opengym demo --system order-fulfilment`` on the
real broker and registry, every component a worker process, under a topic prefix of its own, with late,
damaged and unassignable picks and declined cards. It must settle with every invariant holding, late picks
put back, and say so in its summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest

from opengym_streams.settings import REPO_ROOT
from tests.integration.e2e_support import delete_prefixed_topics


def count(summary: str, label: str) -> int:
    found = re.search(rf"^\s*{re.escape(label)}\s+(\d+)", summary, re.MULTILINE)
    assert found, f"the summary has no line {label!r}:\n{summary}"
    return int(found.group(1))


@pytest.fixture(scope="module")
def demo_run(stack, tmp_path_factory):
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {**os.environ, "OPENGYM_TOPIC_PREFIX": prefix}
    env.pop("OPENGYM_SYSTEM", None)
    argv = [sys.executable, "-m", "opengym_streams.cli", "demo", "--system", "order-fulfilment", "--orders", "30",
            "--rate", "30", "--late-pick-share", "0.25", "--late-pick-ms", "3000", "--pick-timeout-ms", "2000",
            "--busy-share", "0.05", "--damaged-share", "0.05", "--decline-share", "0.05", "--no-metrics",
            "--timeout", "90", "--log-dir", str(tmp_path_factory.mktemp("order-demo"))]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=400, cwd=REPO_ROOT, env=env)
    finally:
        delete_prefixed_topics(prefix)
    return result


def test_the_order_demo_settles_with_every_invariant_holding(demo_run):
    out = demo_run.stdout
    assert demo_run.returncode == 0, f"exit {demo_run.returncode}\n{out[-4000:]}\n{demo_run.stderr[-3000:]}"
    assert "workers: starting 7 (order, payments, warehouse, pickers, shipping, notifications, correlation)" in out
    assert "Invariants                                   all hold" in out
    assert count(out, "Orders requested") == 30


def test_its_summary_adds_up_order_by_order(demo_run):
    out = demo_run.stdout
    placed, picked = count(out, "placed"), count(out, "picked")
    unfulfillable = sum(int(n) for n in re.findall(r"^\s*unfulfillable\s+\w+\s+(\d+)", out, re.MULTILINE))
    assert placed == picked + unfulfillable, "every placed order is picked or unfulfillable"
    assert count(out, "labels generated") == count(out, "shipment notices") == picked
    assert count(out, "shipments cancelled") == count(out, "cancellation notices") == unfulfillable
    assert count(out, "refunded (unfulfillable)") == unfulfillable
    assert count(out, "order confirmations") == placed
    assert count(out, "late picks put back") >= 1, "a quarter of the picks come late: some are put back"
    assert "Dead letters                                      0" in out
