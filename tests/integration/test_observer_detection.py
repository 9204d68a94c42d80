"""Detection truth: the real observer worker, fed a workload of known injected faults as facts on the
real broker, reports exactly the expected anomalies (no more, no fewer), each within a stated bound
after its deadline; killing and restarting it mid-run changes nothing; it writes only to its own topics.

Time is driven by ticks the test produces on ``opengym.correlation.clock``. The facts are dated a day
ahead of the wall clock, so the worker's own (wall-clock) ticks can never make anything overdue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from opengym import topics
from opengym.agents.system import SYSTEM
from opengym_streams.observe import observed_topics as observed_topics_of
from opengym.demo import scenarios
from opengym_streams.codec import AvroCodec
from opengym_streams.event import now_ms
from opengym_streams.kafka import admin, consumer, create_topics, delete_topics_with_prefix, producer
from opengym_streams.models import ClockTicked
from opengym_streams.settings import REPO_ROOT
from tests.conftest import wait_for
from opengym.topics import topic_for_event, topic_name

GRACE_MS = 1000
TICK_STEP_MS = 5000
DETECTION_BOUND_MS = GRACE_MS + TICK_STEP_MS
"""Every anomaly is detected at most this long (observer time) after its deadline: the grace the
observer allows facts in flight, plus the tick step."""

WORKER_ENV = {
    "OPENGYM_METRICS_PORT": "0",
    "OPENGYM_OBSERVER_GRACE_MS": str(GRACE_MS),
    "OPENGYM_ATTENDANCE_PENDING_PROCESS_COMPLETE_WITHIN_MS": "60000",
    "OPENGYM_PARTNER_VISIT_SETTLEMENT_HOP3_STALL_AFTER_MS": "30000",
    # The worker's own wall-clock ticks are harmless (facts are dated a day ahead) but would keep the
    # clock topic moving while the test waits for the observer to catch up with it.
    "OPENGYM_TICK_INTERVAL": "3600",
    # The facts are dated a day ahead of the broker's timestamps; the envelope check allows an hour.
    "OPENGYM_MAX_CLOCK_SKEW_MS": str(2 * 24 * 3_600_000),
}

FAULTS_A = {scenarios.NESTED_TIMEOUT: 5, scenarios.LATE_REPLY: 3, scenarios.NOTIFICATION_NEVER_STARTED: 5,
            scenarios.SETTLEMENT_STALLED: 4, scenarios.ORPHAN_REPLY: 2, scenarios.DENIED: 6, scenarios.PAYMENT_FAILED: 3}
FAULTS_B = {scenarios.NESTED_TIMEOUT: 3, scenarios.ATTENDANCE_NEVER_COMPLETED: 4, scenarios.SETTLEMENT_STALLED: 2,
            scenarios.NOTIFICATION_NEVER_STARTED: 2, scenarios.DENIED: 4}
build = SYSTEM.processes


def observed_topics(catalog):
    return observed_topics_of(SYSTEM, catalog)


BOOKINGS_A = 100
BOOKINGS_B = 60


class ObserverWorker:
    """``faust -A agents.correlation worker`` as a real OS process."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, **WORKER_ENV}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "faust"), "-A", "opengym.agents.correlation", "worker", "-l", "info", "--without-web"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


class Feeder:
    """Produces facts and ticks the way the components do: Avro, keyed by correlation id, murmur2."""

    def __init__(self):
        self.codec = AvroCodec()
        self.producer = producer(partitioner="murmur2_random")
        self.produced: Counter[str] = Counter()
        self.failed: list[str] = []
        self.offsets: Counter[tuple[str, int, int]] = Counter()
        """(topic, partition, offset) of every delivery report."""
        self.without_offset: Counter[tuple[str, int]] = Counter()
        """Delivery reports that said success but gave no offset: librdkafka reports a message so when it
        infers delivery instead of being told (a duplicate-sequence reply, or a later request's success
        taken for an earlier failed one's), which is how records went missing (docs/notes/observer.md)."""

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
        elif msg.offset() is None:
            self.without_offset[(msg.topic(), msg.partition())] += 1
        else:
            self.offsets[(msg.topic(), msg.partition(), msg.offset())] += 1

    def flush(self) -> None:
        assert self.producer.flush(30) == 0
        assert self.failed == [], f"the broker refused {len(self.failed)} of the test's messages: {self.failed[:5]}"

    def facts(self, events) -> None:
        for event in events:
            name = topic_name(topic_for_event(event.avro_name))
            self.producer.produce(name, key=event.correlation_id.encode(), value=self.codec.encode(event, name),
                                  on_delivery=self._delivered)
            self.produced[name] += 1
            self.producer.poll(0)
        self.flush()

    def tick(self, now: int) -> None:
        name = topic_name(topics.CORRELATION_CLOCK)
        for partition in range(topics.CORRELATION_CLOCK.partitions):
            tick = ClockTicked.new(correlation_id="clock", occurred_at=now, now=now, component="correlation")
            self.producer.produce(name, key=b"clock", value=self.codec.encode(tick, name), partition=partition,
                                  on_delivery=self._delivered)
            self.produced[name] += 1
        self.flush()


def end_offsets(names) -> dict[tuple[str, int], int]:
    probe = consumer(f"probe-{uuid.uuid4().hex}")
    try:
        ends = {}
        for name in names:
            for partition in probe.list_topics(name, timeout=10).topics[name].partitions:
                ends[(name, partition)] = probe.get_watermark_offsets(TopicPartition(name, partition), timeout=10)[1]
        return ends
    finally:
        probe.close()


def caught_up(group: str, names) -> bool:
    """The observer's group has committed (so processed) every message on these topics."""
    ends = end_offsets(names)
    probe = consumer(group)
    try:
        committed = probe.committed([TopicPartition(n, p) for n, p in ends], timeout=10)
    finally:
        probe.close()
    return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in committed if ends[(tp.topic, tp.partition)] > 0)


def read_anomalies(codec: AvroCodec) -> list:
    name = topic_name(topics.CORRELATION_ANOMALIES)
    ends = end_offsets([name])
    reader = consumer(f"read-{uuid.uuid4().hex}")
    reader.assign([TopicPartition(name, p, 0) for (_, p) in ends])
    found, positions = [], {p: 0 for (_, p) in ends}
    deadline = time.monotonic() + 30
    while any(positions[p] < ends[(name, p)] for p in positions) and time.monotonic() < deadline:
        msg = reader.poll(0.5)
        if msg is None or msg.error():
            continue
        positions[msg.partition()] = msg.offset() + 1
        found.append(codec.decode(msg.value()))
    reader.close()
    return found


@pytest.fixture(scope="module", params=["memory", "rocksdict"])
def observed_run(request, stack, tmp_path_factory):
    """One run per table store: group A facts, ticks, SIGKILL + restart mid-run, more ticks, group B
    facts, ticks. With rocksdict the restarted worker also reopens its local database."""
    started = time.monotonic()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENGYM_STORE", request.param)
        mp.setenv("OPENGYM_TOPIC_PREFIX", prefix)
        mp.setenv("OPENGYM_HOME", str(tmp_path_factory.mktemp("observer-home")))
        for key, value in WORKER_ENV.items():
            mp.setenv(key, value)
        create_topics()
        catalog = build()
        fact_topics = [topic_name(t) for t in observed_topics(catalog)]
        group = f"{prefix}opengym-correlation"
        feeder = Feeder()
        t0 = now_ms() + 24 * 3_600_000
        t0_b = t0 + 100_000
        scenarios_a = scenarios.mix(BOOKINGS_A, FAULTS_A, seed=1)
        scenarios_b = scenarios.mix(BOOKINGS_B, FAULTS_B, seed=2)
        expected: dict[tuple[str, str, str], str] = {}
        workload_a, workload_b = [], []
        for group_name, chosen, start, workload in (("a", scenarios_a, t0, workload_a),
                                                     ("b", scenarios_b, t0_b, workload_b)):
            for i, scenario in enumerate(chosen):
                booking_id = f"{prefix}{group_name}{i:03d}-{scenario}"
                workload += scenarios.booking(booking_id, start + i * 10, scenario)
                for kind, process in scenarios.EXPECTED[scenario]:
                    expected[(booking_id, kind, process)] = scenario

        worker = ObserverWorker(tmp_path_factory.mktemp("observer-log") / "worker.log")
        worker.start()
        phases = {}
        try:
            def wait_caught_up(names, what):
                wait_for(lambda: caught_up(group, names) or not worker.alive(), 90, what,
                         seen=lambda: worker.log_tail())
                assert worker.alive(), worker.log_tail()

            feeder.facts(workload_a)
            wait_caught_up(fact_topics, "the observer to consume group A's facts")
            phases["a_consumed_s"] = time.monotonic() - started
            # Up to t0+20s: nested timeouts and orphan replies are due, downstream and chain ones are not.
            for now in range(t0 + TICK_STEP_MS, t0 + 25_000, TICK_STEP_MS):
                feeder.tick(now)
            wait_caught_up([topic_name(topics.CORRELATION_CLOCK)], "the observer to handle the first ticks")
            before_restart = len(read_anomalies(feeder.codec))
            worker.kill()
            worker.start()
            # Group B's facts arrive while the restarted worker is still starting and recovering.
            phases["restarted_at_s"] = time.monotonic() - started
            feeder.facts(workload_b)
            wait_caught_up(fact_topics, "the restarted observer to consume group B's facts")
            # Replay the last ticks too: the restarted observer must not report anything twice. (Ticks
            # that arrive while it still has unread facts judge nothing: see Progress in the agent.)
            for now in range(t0 + 15_000, t0 + 100_000, TICK_STEP_MS):
                feeder.tick(now)
            wait_caught_up([topic_name(topics.CORRELATION_CLOCK)], "the restarted observer to handle the ticks")
            for now in range(t0 + 100_000, t0_b + 130_000, TICK_STEP_MS):
                feeder.tick(now)
            wait_caught_up([topic_name(topics.CORRELATION_CLOCK)], "the observer to handle every tick")
            anomalies = read_anomalies(feeder.codec)
        finally:
            worker.stop()
        prefixed = [name for name in admin().list_topics(timeout=10).topics if name.startswith(prefix)]
        ends = end_offsets(prefixed)
        written: Counter[str] = Counter()
        for (name, _), end in ends.items():
            written[name] += end
        yield {
            "prefix": prefix, "expected": expected, "anomalies": anomalies, "before_restart": before_restart,
            "catalog": catalog, "written": written, "produced": feeder.produced, "offsets": feeder.offsets,
            "without_offset": feeder.without_offset,
            "ends": ends,
            "phases": phases,
            "seconds": time.monotonic() - started, "worker_log": worker.log_tail(), "t0": t0,
        }
        delete_topics_with_prefix(prefix)  # the broker is shared and slows down with leftover topics


def test_injected_faults_yield_exactly_the_expected_anomalies_across_a_restart(observed_run):
    anomalies = observed_run["anomalies"]
    found = {(a.correlation_id, a.kind.value, a.process) for a in anomalies}
    expected = set(observed_run["expected"])
    assert found - expected == set(), f"unexpected anomalies: {sorted(found - expected)}"
    assert expected - found == set(), f"missed anomalies: {sorted(expected - found)}"
    assert 0 < observed_run["before_restart"] < len(expected), "the restart happened mid-run"
    by_id: dict[str, set[str]] = {}
    for a in anomalies:
        by_id.setdefault(a.anomaly_id, set()).add(a.event_id)
    assert len(by_id) == len(expected), "one anomaly_id per occurrence"
    assert len(anomalies) == len(by_id), "no anomaly was published twice, not even across the restart"


def test_each_anomaly_is_detected_within_the_stated_bound_after_its_deadline(observed_run):
    late = [(a.correlation_id, a.kind.value, a.detected_at - a.deadline) for a in observed_run["anomalies"]
            if not a.deadline <= a.detected_at <= a.deadline + DETECTION_BOUND_MS]
    assert late == [], f"detected outside [deadline, deadline + {DETECTION_BOUND_MS} ms]"


def test_the_observer_writes_to_no_topic_but_its_own(observed_run):
    prefix = observed_run["prefix"]
    own = {topic_name(t) for t in topics.ALL_TOPICS if t.owner == "correlation"}
    own_internal = f"{prefix}opengym-correlation"
    for name, count in observed_run["written"].items():
        if name in own or name.startswith(own_internal):
            continue
        reported = sorted((p, o) for (t, p, o) in observed_run["offsets"] if t == name)
        unknown = {p: n for (t, p), n in observed_run["without_offset"].items() if t == name}
        assert count == observed_run["produced"].get(name, 0), (
            f"{name} holds {count} messages, the test produced {observed_run['produced'].get(name, 0)}; "
            f"end offsets {sorted((p, e) for (t, p), e in observed_run['ends'].items() if t == name)}; "
            f"delivery reports without an offset, per partition {unknown}; "
            f"with one (partition, offset) {reported}")
    assert observed_run["written"][topic_name(topics.CORRELATION_ANOMALIES)] >= len(observed_run["expected"])
    assert not observed_run["without_offset"], (
        f"librdkafka reported deliveries without an offset (inferred, not confirmed by the broker), per "
        f"(topic, partition): {dict(observed_run['without_offset'])}")


def test_trace_prints_a_stalled_settlement_with_its_overdue_hop_and_anomaly(observed_run):
    booking_id = next(cid for cid, kind, _ in observed_run["expected"] if kind == "CHAIN_STALLED")
    result = subprocess.run([sys.executable, "-m", "opengym_streams.cli", "trace", booking_id,
                             "--now", str(observed_run["t0"] + 300_000)],
                            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ORCHESTRATION BookingOrchestration (owner reservation): done -> ReservationConfirmed" in out
    assert "CHOREOGRAPHY PartnerVisitSettlement (no owner): anomalous" in out
    assert "OVERDUE: PaymentSettled | PaymentFailed from finance" in out
    assert "Anomalies reported by the observer:\n  CHAIN_STALLED PartnerVisitSettlement" in out
