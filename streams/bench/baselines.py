"""The two baselines the pipeline benchmark is measured against, on the same machine in the same run.

(a) The broker's own limit: Kafka's ``ProducerPerformance`` and ``ConsumerPerformance`` tools (in the
    ``kafka-tools`` jar the stack already fetched) on records of the pipeline's message size.
(b) A raw pass-through: plain confluent-kafka consume -> produce over the same hops as the pipeline,
    each component a process of its own, with no Avro, no state, no dedupe. It is what the pipeline would
    cost if the business logic, the codec and Faust were free.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from opengym_streams import stack
from opengym_streams.kafka import admin, consumer, producer
from opengym_streams.settings import get_settings, knob

PASSTHROUGH_HOPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    # process -> ((input topic, (output topics...)), ...): the pipeline's hops for one confirmed booking.
    "reservation": (
        ("commands", ("seats",)),                 # BookClassRequested -> SeatHoldRequested (by class)
        ("seats", ("seat-replies",)),             # seat keeper -> SeatHeld (by booking)
        ("seat-replies", ("entitlement-requests",)),  # -> InstrumentConsumeRequested
        ("entitlement-events", ("reservation-events",)),  # InstrumentConsumed -> ReservationConfirmed
    ),
    "entitlement": (
        ("entitlement-requests", ("members",)),   # repartition by member
        ("members", ("entitlement-events",)),     # -> InstrumentConsumed
    ),
    "tenant-billing": (("reservation-events", ("billing",)),),
    "attendance": (("reservation-events", ("attendance",)),),
    "notifications": (("reservation-events", ("notifications",)),),
}
PASSTHROUGH_SINKS = ("billing", "attendance", "notifications")


@dataclass
class BrokerLimit:
    record_size: int
    records: int
    produce_per_s: float
    produce_mb_per_s: float
    produce_p99_ms: float
    consume_per_s: float
    consume_mb_per_s: float


def _java_tool(main_class: str, args: list[str], timeout: float) -> str:
    libs = stack.Layout(get_settings().home).kafka_libs
    java = stack._java()
    result = subprocess.run(
        [java, f"-Dlog4j2.configurationFile={libs / 'log4j2.xml'}", "-cp", f"{libs}/*", main_class, *args],
        capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{main_class} failed: {result.stderr.strip()[-400:]}")
    return result.stdout


def _secured_tool(option: str, topic: str) -> list[str]:
    """``option FILE`` with the SASL/TLS client properties for Kafka's Java tools, or nothing when open."""
    from opengym_streams.security import java_client_properties
    from opengym_streams.stack import _write_private

    props = java_client_properties()
    if not props:
        return []
    path = Path(tempfile.gettempdir()) / f"opengym-{topic}-{option.strip('-')}.properties"
    _write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()))  # holds a password: owner only
    return [option, str(path)]


def _create(names: list[str], partitions: int) -> None:
    client = admin()
    for future in client.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(30)


def _delete(names: list[str]) -> None:
    client = admin()
    for future in client.delete_topics(names).values():
        try:
            future.result(30)
        except Exception:
            pass


def broker_limit(records: int, record_size: int, partitions: int = 4) -> BrokerLimit:
    """Kafka's own producer and consumer performance tools against our broker."""
    topic = f"bench.broker.{uuid.uuid4().hex[:8]}"
    _create([topic], partitions)
    bootstrap = get_settings().bootstrap
    try:
        out = _java_tool("org.apache.kafka.tools.ProducerPerformance", [
            "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
            "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
            "linger.ms=5", *_secured_tool("--producer.config", topic)], timeout=600)
        summary = [line for line in out.splitlines() if "records sent" in line][-1]
        rate, mb = map(float, re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", summary).groups())
        p99 = float(re.search(r"([\d.]+) ms 99th", summary).group(1))
        out = _java_tool("org.apache.kafka.tools.ConsumerPerformance", [
            "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(records),
            *_secured_tool("--consumer.config", topic)], timeout=600)
        header, row = [line for line in out.splitlines() if line.strip()][-2:]
        fields = dict(zip([h.strip() for h in header.split(",")], [v.strip() for v in row.split(",")]))
        # nMsg.sec includes the group join; fetch.nMsg.sec is the steady-state rate. Report the former:
        # it is the honest end-to-end figure for draining a backlog.
        return BrokerLimit(record_size, records, rate, mb, p99, float(fields["nMsg.sec"]), float(fields["MB.sec"]))
    finally:
        _delete([topic])
        for secured in Path(tempfile.gettempdir()).glob(f"opengym-{topic}-*.properties"):
            secured.unlink()


def _stage(process: str, hops, names: dict[str, str], stop_at: int, group: str, ready) -> None:
    """One pass-through process: consume its inputs, produce each message to the hop's outputs."""
    routes = {names[src]: [names[dst] for dst in dsts] for src, dsts in hops}
    cons = consumer(group, **{"enable.auto.commit": True, "auto.commit.interval.ms": 1000})
    prod = producer(**{"linger.ms": 5, "acks": "all"})
    assigned = []
    cons.subscribe(list(routes), on_assign=lambda c, partitions: assigned.extend(partitions))
    while not assigned:
        cons.poll(0.1)
    ready.set()
    handled = 0
    while handled < stop_at:
        for msg in cons.consume(500, 0.1):
            if msg.error():
                continue
            for out in routes[msg.topic()]:
                while True:
                    try:
                        prod.produce(out, key=msg.key(), value=msg.value())
                        break
                    except BufferError:
                        prod.poll(0.05)
            handled += 1
        prod.poll(0)
    prod.flush(60)
    cons.close()


def topic_count(topic: str, partitions: int, client=None) -> int:
    own = client is None
    client = client or consumer(f"bench.count.{uuid.uuid4().hex[:8]}")
    try:
        total = 0
        for p in range(partitions):
            low, high = client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        if own:
            client.close()


def wait_for_counts(wanted: dict[str, int], partitions: int, timeout: float, poll_s: float = 0.1) -> None:
    """Block until each topic holds at least its wanted number of messages (cheap: watermarks only)."""
    client = consumer(f"bench.watch.{uuid.uuid4().hex[:8]}")
    deadline = time.monotonic() + timeout
    try:
        while True:
            have = {t: topic_count(t, partitions, client) for t in wanted}
            if all(have[t] >= n for t, n in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"after {timeout:.0f}s: have {have}, want {wanted}")
            time.sleep(poll_s)
    finally:
        client.close()


def last_timestamp_ms(topics: list[str], partitions: int = 4) -> int:
    """The latest broker timestamp on any partition of ``topics`` (the last message's CreateTime)."""
    client = consumer(f"bench.edge.{uuid.uuid4().hex[:8]}")
    latest = 0
    try:
        for topic in topics:
            for p in range(partitions):
                low, high = client.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                client.assign([TopicPartition(topic, p, high - 1)])
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    msg = client.poll(0.5)
                    if msg is not None and not msg.error():
                        latest = max(latest, msg.timestamp()[1])
                        break
        return latest
    finally:
        client.close()


@dataclass
class PassThrough:
    bookings: int
    record_size: int
    seconds: float
    bookings_per_s: float
    messages_per_s: float


def passthrough(bookings: int, record_size: int, partitions: int = 4, timeout: float = 600.0) -> PassThrough:
    """Drain a backlog of ``bookings`` requests through the pass-through topology; time to the last sink."""
    run = uuid.uuid4().hex[:8]
    logical = sorted({t for hops in PASSTHROUGH_HOPS.values() for src, dsts in hops for t in (src, *dsts)})
    names = {t: f"bench.pass.{run}.{t}" for t in logical}
    _create(list(names.values()), partitions)
    try:
        inputs_per_booking = {p: len(h) for p, h in PASSTHROUGH_HOPS.items()}
        ctx = multiprocessing.get_context("spawn")
        procs, readies = [], []
        for process, hops in PASSTHROUGH_HOPS.items():
            ready = ctx.Event()
            proc = ctx.Process(target=_stage, args=(process, hops, names, bookings * inputs_per_booking[process],
                                                    f"bench.pass.{run}.{process}", ready), daemon=True)
            procs.append(proc)
            readies.append(ready)
        for proc in procs:
            proc.start()
        for ready in readies:
            if not ready.wait(120):
                raise TimeoutError("a pass-through stage got no partitions within 120s")
        # The clock starts when the backlog starts to be written, as in the pipeline benchmark; the
        # stages are already running, so producing and draining overlap in both.
        started_ms = time.time() * 1000
        prod = producer(**{"linger.ms": 20})
        payload = os.urandom(record_size)
        for i in range(bookings):
            while True:
                try:
                    prod.produce(names["commands"], key=f"booking-{run}-{i}".encode(), value=payload)
                    break
                except BufferError:
                    prod.poll(0.05)
        prod.flush(60)
        sinks = [names[s] for s in PASSTHROUGH_SINKS]
        wait_for_counts({t: bookings for t in sinks}, partitions, timeout)
        seconds = (last_timestamp_ms(sinks, partitions) - started_ms) / 1000
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        hops_per_booking = sum(len(dsts) for hops in PASSTHROUGH_HOPS.values() for _, dsts in hops)
        return PassThrough(bookings, record_size, seconds, bookings / seconds, bookings * hops_per_booking / seconds)
    finally:
        _delete(list(names.values()))


@dataclass(frozen=True)
class PassthroughConfig:
    source: str = knob("OPENGYM_BENCH_PASSTHROUGH_IN", "bench.passthrough.in", "the bare Faust baseline's input topic")
    sink: str = knob("OPENGYM_BENCH_PASSTHROUGH_OUT", "bench.passthrough.out", "the bare Faust baseline's output topic")


@dataclass
class FaustPassThrough:
    records: int
    record_size: int
    cpu_s: float
    seconds: float
    cpu_us_per_record_hop: float
    """One read and one write: what a record costs to move through one bare Faust agent."""
    cpu_us_per_record_op: float
    """Half of that: a record read or a record written."""


def faust_passthrough(records: int, record_size: int, partitions: int = 4, timeout: float = 300.0) -> FaustPassThrough:
    """(c) A bare Faust agent (``opengym_streams.bench.faust_passthrough``) as a real worker: ``records`` raw
    records in, the same out; its CPU time between ready and the last output."""
    import signal
    import sys
    from pathlib import Path

    run = uuid.uuid4().hex[:8]
    source, sink = f"bench.fpt.{run}.in", f"bench.fpt.{run}.out"
    _create([source, sink], partitions)
    home = get_settings().home / "state" / "bench" / f"fpt-{run}"
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "worker.log"
    env = {**os.environ, "OPENGYM_BENCH_PASSTHROUGH_IN": source, "OPENGYM_BENCH_PASSTHROUGH_OUT": sink,
           "OPENGYM_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("OPENGYM_TOPIC_PREFIX", None)
    faust = str(Path(sys.executable).with_name("faust"))
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([faust, "-A", "opengym_streams.bench.faust_passthrough", "worker", "-l", "info",
                                   "--without-web"], stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Worker ready" not in log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Faust pass-through did not get ready: {log_path.read_text()[-600:]}")
            time.sleep(0.2)
        cpu_before = _process_cpu_s(worker.pid)
        started = time.monotonic()
        prod = producer(**{"linger.ms": 20})
        payload = os.urandom(record_size)
        for i in range(records):
            while True:
                try:
                    prod.produce(source, key=f"record-{run}-{i}".encode(), value=payload)
                    break
                except BufferError:
                    prod.poll(0.05)
        prod.flush(60)
        wait_for_counts({sink: records}, partitions, timeout, poll_s=0.05)
        seconds = time.monotonic() - started
        cpu = _process_cpu_s(worker.pid) - cpu_before
        return FaustPassThrough(records, record_size, round(cpu, 3), round(seconds, 3),
                                round(cpu * 1e6 / records, 1), round(cpu * 1e6 / (2 * records), 1))
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        _delete([source, sink])


def _process_cpu_s(pid: int) -> float:
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def topic_ends(prefix: str) -> dict[tuple[str, int], int]:
    """End offset of every partition of every topic whose name starts with ``prefix`` (changelogs included)."""
    client = consumer(f"bench.ends.{uuid.uuid4().hex[:8]}")
    try:
        names = [t for t in client.list_topics(timeout=10).topics if t.startswith(prefix)]
        ends = {}
        for name in names:
            for p in client.list_topics(name, timeout=10).topics[name].partitions:
                ends[(name, p)] = client.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
        return ends
    finally:
        client.close()


def group_offsets(groups: list[str]) -> dict[tuple[str, str, int], int]:
    """Committed offset of every partition each consumer group has committed: (group, topic, partition)."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    client = admin()
    found = {}
    for group in groups:
        result = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(30)
        for tp in result.topic_partitions or ():
            if tp.offset >= 0:
                found[(group, tp.topic, tp.partition)] = tp.offset
    return found
