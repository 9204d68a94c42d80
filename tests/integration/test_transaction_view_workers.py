"""With two observer workers sharing the partitions, either one's UI answers for every transaction: a key's
page is served by the worker that holds its partition (the other proxies the request there), and a list
gathers both workers' parts. Real ``faust -A opengym.agents.correlation worker`` processes on their own topics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from opengym.agents.system import SYSTEM
from opengym_streams.observe import observed_topics
from opengym.demo import scenarios
from opengym_streams.demo.supervisor import group_members
from opengym_streams.event import now_ms
from opengym_streams.kafka import create_topics, delete_topics_with_prefix
from opengym_streams.settings import REPO_ROOT
from opengym_streams.ui import free_port
from tests.conftest import wait_for
from tests.integration.test_observer_detection import WORKER_ENV, Feeder, caught_up
from opengym.topics import topic_name

BOOKINGS = 12


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture(scope="module")
def two_workers(stack, tmp_path_factory):
    prefix = f"t{uuid.uuid4().hex[:10]}."
    ports = [free_port(), free_port()]
    procs, logs = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENGYM_TOPIC_PREFIX", prefix)
        create_topics()
        try:
            for n, port in enumerate(ports):
                home = tmp_path_factory.mktemp(f"worker{n}")
                log_path = home / "worker.log"
                env = {**os.environ, **WORKER_ENV, "OPENGYM_UI_PORT": str(port), "OPENGYM_HOME": str(home)}
                procs.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "faust"), "-A", "opengym.agents.correlation", "worker", "-l", "info"],
                    stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
                    start_new_session=True))
                logs.append(log_path)

            def tails() -> str:
                return "\n---\n".join("\n".join(p.read_text(errors="replace").splitlines()[-8:]) for p in logs)

            group = f"{prefix}opengym-correlation"
            wait_for(lambda: len(group_members(group) or ()) == 2 or any(p.poll() is not None for p in procs), 120,
                     "both observer workers to be members of the group", seen=tails)
            assert all(p.poll() is None for p in procs), tails()
            wait_for(lambda: all(log.read_text(errors="replace").count("[^Worker]: Ready") >= 1 for log in logs), 90,
                     "both workers to be ready", seen=tails)
            feeder = Feeder()
            t0 = now_ms() + 24 * 3_600_000
            ids = [f"{prefix}w{i:03d}" for i in range(BOOKINGS)]
            feeder.facts([e for i, cid in enumerate(ids) for e in scenarios.booking(cid, t0 + i * 10, scenarios.CLEAN)])
            inputs = [topic_name(t) for t in observed_topics(SYSTEM, SYSTEM.processes())]
            wait_for(lambda: caught_up(group, inputs), 60, "the workers to consume the facts", seen=tails)
            urls = [f"http://127.0.0.1:{port}" for port in ports]

            def split():
                return [{r["correlation_id"] for r in get(f"{u}/api/transactions?local=1")[1]["rows"]} for u in urls]

            # The worker that handled a key holds it; wait until both have answered with their part.
            wait_for(lambda: set().union(*split()) == set(ids), 30, "the workers' states to hold every booking",
                     seen=split)
            yield {"urls": urls, "ids": ids, "split": split()}
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
            delete_topics_with_prefix(prefix)


def test_each_worker_holds_part_of_the_transactions(two_workers):
    first, second = two_workers["split"]
    assert first and second and not first & second


def test_either_worker_answers_for_a_transaction_the_other_holds(two_workers):
    first_url, second_url = two_workers["urls"]
    held_by_second = sorted(two_workers["split"][1])
    for cid in held_by_second:
        status, data = get(f"{first_url}/api/transactions/{cid}")
        assert status == 200 and data["in_state"] and data["correlation_id"] == cid, json.dumps(
            [data, get(f"{first_url}/api/health?key={cid}"), get(f"{second_url}/api/health?key={cid}")])
    with urllib.request.urlopen(f"{first_url}/transactions/{held_by_second[0]}", timeout=10) as page:
        assert "BookingOrchestration" in page.read().decode()


def test_a_list_on_either_worker_gathers_both_parts(two_workers):
    for url in two_workers["urls"]:
        status, data = get(f"{url}/api/transactions")
        assert status == 200 and {r["correlation_id"] for r in data["rows"]} == set(two_workers["ids"])
        assert data["errors"] == []
