"""Poison: every kind of bad input a hostile producer or a careless operator can write, on every topic a
worker of the system reads, with every worker (the observer included) running as a real process on the
real broker and registry.

Each bad record must be dead-lettered by every component that reads its topic (with the reason), or,
where that component has nothing to do with the record's type, visibly counted as ignored
(``opengym_ignored_total``); no worker may die; and a booking sent afterwards completes its whole chain.

The input topics and who reads them come from the System (each component built as its worker builds it),
not from a list here. Phases, each produced at once and then waited for once, on conditions with deadlines:
1. the valid originals of the conflicting duplicates, until every reader has committed past them;
2. every bad record (kind x topic), until every reader has committed past them; then the dead letters are
   read and the ignored counters compared with a snapshot taken between the phases;
3. a small booking workload, until it settles; then the invariants.

The kind x topic -> outcome table is printed (``-s``) and written to the test's tmp dir; docs/notes/poison.md
keeps a copy of a run's.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import time
import types
import typing
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema

from opengym_streams.codec import AvroCodec, subject_name
from opengym_streams.component import CLOCK_TICKED
from opengym_streams.event import Event, model_for, now_ms
from opengym_streams.kafka import producer as make_producer
from opengym_streams.system import load
from opengym_streams.topic import DEAD_LETTER, Topic, short, topic_name
from tests.conftest import wait_for
from tests.integration.e2e_support import (MAX_IN_FLIGHT, TARGET_LATENCY_MS, delete_prefixed_topics, settle,
                                          small_plan, start_run)
from tests.integration.hostile_support import committed, components, input_topics, start_every_worker
from opengym.demo.faults import Faults
from opengym.demo.summary import summarize

FAULTS = Faults(delay_share=0.0, payment_failure_rate=0.0, booking_timeout_ms=5000, tick_interval=0.25)
"""No injected faults: this test is about bad input, and a clean booking chain afterwards."""

MB_VALUE = 1_000_000
"""A value of 1 MB (what the broker's default message.max.bytes still takes in a batch of one)."""

UNDECODABLE = ("NOT_FRAMED", "UNKNOWN_SCHEMA_ID", "UNKNOWN_RECORD", "UNDECODABLE")

FOREIGN_SCHEMA = {"type": "record", "name": "Intruder", "namespace": "poison.foreign",
                  "fields": [{"name": "event_id", "type": "string"}, {"name": "note", "type": "string"}]}


@dataclass
class Record:
    kind: str
    topic: str
    """Contract name."""
    key: bytes | None
    value: bytes | None
    type_name: str | None = None
    """The record's type when its framing names a schema of ours (it may not decode)."""
    event_id: str | None = None
    partition: int | None = None
    offset: int | None = None

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.value).hexdigest() if self.value is not None else None


@dataclass
class Expect:
    """What a reader must do with a record: dead-letter it with one of ``kinds``, or (``may_ignore``)
    count it as ignored with a reason starting with one of ``reasons`` (any reason when empty)."""

    kinds: tuple[str, ...]
    may_ignore: bool = False
    reasons: tuple[str, ...] = ()


@dataclass
class Cell:
    outcomes: Counter = field(default_factory=Counter)

    def text(self) -> str:
        return ", ".join(f"{o}" + (f" x{n}" if n > 1 else "") for o, n in sorted(self.outcomes.items()))


def _placeholder(annotation, text: str):
    """A value of the field's type that passes every contract check (strings all equal the key, so any
    'correlates_by' holds; numbers positive; the first enum member)."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    if options:
        annotation = next(o for o in options if o is not type(None))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    name = str(annotation).lower()
    if "bool" in name:
        return False
    if "int" in name:
        return 1
    if "float" in name:
        return 1.0
    if "bytes" in name:
        return text.encode()
    return text


def valid_event(type_name: str, topic: Topic, key: str, **overrides) -> Event:
    """A well-formed event of ``type_name`` whose record key is ``key``: every string field is ``key``."""
    avro_name = next(n for n in topic.events if short(n) == type_name) if type_name in topic.short_names else \
        next(n for t in load().topics.all for n in t.events if short(n) == type_name)
    model = model_for(avro_name)
    fields = {"event_id": str(uuid.uuid4()), "correlation_id": key, "causation_id": None, "occurred_at": now_ms()}
    for name, info in model.model_fields.items():
        if name not in fields:
            fields[name] = _placeholder(info.annotation, key)
    fields.update(overrides)
    return model.model_validate(fields) if not overrides else model.model_construct(**fields)


def handled_by(reader, type_name: str) -> bool:
    """Whether some agent of ``reader`` (a Component) that reads the topic handles or forwards the type."""
    return any(type_name in a.handlers or type_name in a.forward for a in reader.agents)


def sample_type(topic: Topic, readers: dict) -> str:
    """The type the topic carries that the most of its readers act on (ties: declaration order)."""
    names = [short(n) for n in topic.events if n != DEAD_LETTER]
    return max(names, key=lambda n: (sum(handled_by(r, n) for r in readers.values()), -names.index(n)))


def foreign_type(topic: Topic, readers: dict, catalog) -> str:
    """A business type another topic carries that this topic's readers would act on, if there is one."""
    others = [short(n) for t in catalog.contract for n in t.events
              if short(n) not in topic.short_names and short(n) != CLOCK_TICKED and n != DEAD_LETTER]
    others = list(dict.fromkeys(others))
    return max(others, key=lambda n: (sum(handled_by(r, n) for r in readers.values()), -others.index(n)))


@pytest.fixture(scope="module")
def poison_prefix(stack):
    from opengym_streams.kafka import create_topics

    prefix = f"t{uuid.uuid4().hex[:10]}."
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
        create_topics()
        yield prefix
    delete_prefixed_topics(prefix)


def test_no_kind_of_bad_input_on_any_input_topic_stops_a_worker_or_passes_unaccounted(poison_prefix, tmp_path):
    started = time.monotonic()
    system = load()
    built = components(system)
    readers_of = input_topics(built)
    catalog = system.topics
    codec = AvroCodec()
    registry = codec.registry
    producer = make_producer(partitioner="murmur2_random", **{"message.max.bytes": 2 * MB_VALUE})

    workers = start_every_worker(tmp_path / "workers", poison_prefix, FAULTS.env())
    supervisor = workers.supervisor
    startup_s = time.monotonic() - started
    run = start_run(small_plan(6, seed=17))
    try:
        def key() -> str:
            return f"poison-{uuid.uuid4().hex[:12]}"

        def encode(event: Event, topic: Topic) -> bytes:
            return codec.encode(event, topic_name(topic))

        # ---- phase 1: the originals of the conflicting duplicates --------------------------------
        records: list[Record] = []
        originals: list[Record] = []
        by_topic = {name: catalog.by_name[name] for name in readers_of}
        for name, topic in by_topic.items():
            readers = {c: built[c] for c in readers_of[name]}
            kind = sample_type(topic, readers)
            k = key()
            original = valid_event(kind, topic, k)
            originals.append(Record("original", name, k.encode(), encode(original, topic), kind, original.event_id))
            # Other content under the same id: another cause (a later occurred_at alone is a redelivery of
            # an answer decided again, not a conflict).
            changed = original.model_copy(update={"causation_id": f"forged-{k}"})
            records.append(Record("conflicting duplicate", name, k.encode(), encode(changed, topic), kind,
                                  original.event_id))
        _produce(producer, originals)
        _wait_committed(readers_of, originals, poison_prefix, "the originals of the conflicting duplicates")
        before = {c: _ignored(workers, c) for c in built}

        # ---- phase 2: every kind of bad record on every input topic ------------------------------
        foreign_ids: dict[str, int] = {}
        for name, topic in by_topic.items():
            readers = {c: built[c] for c in readers_of[name]}
            runtime = topic_name(topic)
            kind = sample_type(topic, readers)
            good = lambda k, **o: valid_event(kind, topic, k, **o)  # noqa: E731
            k = key()
            records.append(Record("unframed", name, k.encode(), f"not avro: {k} \xff".encode("latin-1")))
            k = key()
            body = encode(good(k), topic)
            records.append(Record("unknown schema id", name, k.encode(),
                                  b"\0" + (1_900_000_000 + len(records)).to_bytes(4, "big") + body[5:]))
            k = key()
            whole = encode(good(k), topic)
            records.append(Record("truncated Avro", name, k.encode(), whole[: 5 + (len(whole) - 5) // 2], kind))
            subject = subject_name(runtime, "poison.foreign.Intruder")
            if subject not in foreign_ids:
                foreign_ids[subject] = registry.register_schema(subject, Schema(json.dumps(FOREIGN_SCHEMA), "AVRO"))
            k = key()
            buf = _framed(foreign_ids[subject], FOREIGN_SCHEMA, {"event_id": str(uuid.uuid4()), "note": k})
            records.append(Record("foreign record", name, k.encode(), buf))
            other = foreign_type(topic, readers, catalog)
            k = key()
            records.append(Record("type of another topic", name, k.encode(),
                                  encode(valid_event(other, topic, k), topic), other))
            k = key()
            records.append(Record("empty key", name, b"", encode(good(k), topic), kind))
            k = key()
            records.append(Record("mismatched key", name, f"other-{k}".encode(), encode(good(k), topic), kind))
            k = key()
            records.append(Record("null key", name, None, encode(good(k), topic), kind))
            k = key()
            framed = encode(good(k), topic)
            records.append(Record("1 MB value", name, k.encode(), framed + b"\x01" * (MB_VALUE - len(framed)), kind))
            k = key()
            records.append(Record("tombstone", name, k.encode(), None))
            k = key()
            records.append(Record("occurred_at before 1970", name, k.encode(),
                                  encode(good(k, occurred_at=-86_400_000), topic), kind))
            k = key()
            records.append(Record("occurred_at a century ahead", name, k.encode(),
                                  encode(good(k, occurred_at=now_ms() + 100 * 365 * 86_400_000), topic), kind))
            k = key()
            records.append(Record("empty event_id", name, k.encode(), encode(good(k, event_id=""), topic), kind))
            k = key()
            records.append(Record("random bytes", name, k.encode(), os.urandom(300)))
            k = key()
            records.append(Record("empty value", name, k.encode(), b""))
        _produce(producer, records)
        _wait_committed(readers_of, records, poison_prefix, "every bad record")
        assert supervisor.dead() == [], f"workers died: {supervisor.dead()}"
        run.collector.drain()
        after = {c: _ignored(workers, c) for c in built}

        table, unaccounted = _outcomes(records, readers_of, built, run.facts.of("DeadLetter"), before, after)
        text = _table_text(table, by_topic, {(r.kind, r.topic): r.type_name for r in records})
        print("\n" + text)
        (tmp_path / "poison-table.md").write_text(text)

        letters = {(d.source_topic, d.source_partition, d.source_offset, d.component): d
                   for d in run.facts.of("DeadLetter")}
        big = [r for r in records if r.kind == "1 MB value"]
        for r in big:
            for component in readers_of[r.topic]:
                d = letters.get((topic_name(by_topic[r.topic]), r.partition, r.offset, component))
                if d is not None:
                    assert d.payload_truncated and d.payload_size == MB_VALUE and len(d.payload) < MB_VALUE, d
                    assert d.payload_sha256 == r.sha256
        ours = {r.event_id for r in records + originals if r.event_id}
        republished = [(a.event_id, a.type_name) for a, b in run.facts.conflicts if a.event_id not in ours]
        assert republished == [], f"derived event ids published with two different contents: {republished}"
        assert unaccounted == [], "bad records neither dead-lettered nor counted as ignored:\n" + "\n".join(unaccounted)

        # ---- phase 3: a booking workload completes its whole chain ---------------------------------
        run.driver.seed()
        run.driver.send_bookings(20, max_in_flight=MAX_IN_FLIGHT, target_latency_ms=TARGET_LATENCY_MS)
        settle(run, 90)
        # The forged duplicates above are two contents under one id on purpose; every other event is checked.
        assert [v for v in run.violations() if not any(event_id in v for event_id in ours)] == []
        outcomes = summarize(run.facts, run.booking_ids).outcomes
        assert outcomes["confirmed"] > 0, outcomes
        assert supervisor.dead() == [], f"workers died: {supervisor.dead()}"
        assert {c: w.starts for c, w in supervisor.workers.items()} == {c: 1 for c in supervisor.workers}
        print(f"poison suite: {len(records)} records on {len(by_topic)} topics, {len(built)} workers; "
              f"startup {startup_s:.0f}s, total {time.monotonic() - started:.0f}s")
    finally:
        run.collector.close()
        supervisor.stop()


def _framed(schema_id: int, schema: dict, record: dict) -> bytes:
    import io

    buf = io.BytesIO()
    buf.write(b"\0" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def _produce(producer, records: list[Record]) -> None:
    failed = []

    def report(record):
        def delivered(err, msg):
            if err is not None:
                failed.append(f"{record.kind} on {record.topic}: {err}")
            else:
                record.partition, record.offset = msg.partition(), msg.offset()
        return delivered

    for r in records:
        producer.produce(topic_name(load().topics.by_name[r.topic]), key=r.key, value=r.value, on_delivery=report(r))
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failed == [], failed


def _wait_committed(readers_of, records: list[Record], prefix: str, what: str, timeout: float = 120.0) -> None:
    """Until every reader's consumer group has committed past every record (so handled, ignored or
    dead-lettered, and its dead letter confirmed by the broker: the runtime commits after its outputs)."""
    wanted: dict[str, dict[tuple[str, int], int]] = defaultdict(dict)
    for r in records:
        name = topic_name(load().topics.by_name[r.topic])
        for component in readers_of[r.topic]:
            tp = (name, r.partition)
            wanted[component][tp] = max(wanted[component].get(tp, 0), r.offset + 1)

    def behind() -> dict[str, int]:
        left = {}
        for component, need in wanted.items():
            have = committed(component, set(need), prefix)
            missing = sum(max(0, end - have.get(tp, 0)) for tp, end in need.items())
            if missing:
                left[component] = missing
        return left

    wait_for(lambda: not behind(), timeout, f"every reader to commit past {what}", interval=1.0, seen=behind)


def _ignored(workers, component: str) -> Counter:
    """(event_type, reason) -> opengym_ignored_total of the component's worker now."""
    out = Counter()
    for labels, value in workers.counter(component, "opengym_ignored_total").items():
        d = dict(labels)
        out[(d["event_type"], d["reason"])] += value
    return out


def _expect(record: Record, reader) -> Expect:
    handles = record.type_name is not None and handled_by(reader, record.type_name)
    not_handled = ("not handled by",)
    if record.kind == "type of another topic":
        return Expect(("CONTRACT_VIOLATION",))
    if record.kind in ("unframed", "tombstone", "empty value"):
        return Expect(("NOT_FRAMED",))
    if record.kind == "unknown schema id":
        return Expect(("UNKNOWN_SCHEMA_ID",))
    if record.kind == "foreign record":
        return Expect(("UNKNOWN_RECORD",))
    if record.kind == "random bytes":
        return Expect(UNDECODABLE)
    if record.kind in ("truncated Avro", "1 MB value"):
        # A reader that has nothing to do with the type knows it from the schema id, without decoding.
        return Expect(("UNDECODABLE",), may_ignore=not handles, reasons=not_handled)
    if record.kind == "conflicting duplicate":
        # Handled: a conflict. Where the original was ignored (nothing was kept to compare), so is its copy.
        return Expect(("DUPLICATE_CONFLICT",), may_ignore=True)
    return Expect(("CONTRACT_VIOLATION",), may_ignore=not handles, reasons=not_handled)


def _outcomes(records, readers_of, built, letters, before, after):
    """(kind, topic) -> {reader: Cell}, and the list of (record, reader) nobody accounted for."""
    by_offset = {(d.component, d.source_topic, d.source_partition, d.source_offset): d for d in letters}
    by_hash = defaultdict(list)
    by_correlation = defaultdict(list)
    for d in letters:
        if d.payload_sha256:
            by_hash[(d.component, d.payload_sha256)].append(d)
        by_correlation[(d.component, d.correlation_id)].append(d)
    table: dict[tuple[str, str], dict[str, Cell]] = defaultdict(lambda: defaultdict(Cell))
    waiting: dict[tuple[str, str], list[tuple[Record, Expect]]] = defaultdict(list)
    unaccounted: list[str] = []
    for r in records:
        runtime = topic_name(load().topics.by_name[r.topic])
        for component in readers_of[r.topic]:
            expect = _expect(r, built[component])
            d = by_offset.get((component, runtime, r.partition, r.offset))
            if d is None and r.sha256 is not None:
                found = by_hash.get((component, r.sha256))
                d = found[0] if found else None
            if d is None and r.key:
                # Handed in process to another agent of the component (a repartitioning hop), the record
                # was dead-lettered there: no offset, other bytes; its key (unique here) is its correlation id.
                found = by_correlation.get((component, r.key.decode()))
                d = found[0] if found and len(found) == 1 else None
            if d is not None:
                cell = f"DLQ {d.error_kind}"
                if d.error_kind not in expect.kinds:
                    unaccounted.append(f"{r.kind} on {r.topic} -> {component}: dead-lettered as {d.error_kind} "
                                       f"({d.reason[:160]}), expected {expect.kinds}")
                    cell += " (unexpected)"
                table[(r.kind, r.topic)][component].outcomes[cell] += 1
            elif expect.may_ignore and r.type_name is not None:
                waiting[(component, r.type_name)].append((r, expect))
            else:
                unaccounted.append(f"{r.kind} on {r.topic} -> {component}: no dead letter (expected {expect.kinds})")
                table[(r.kind, r.topic)][component].outcomes["NOTHING"] += 1
    for (component, type_name), items in waiting.items():
        delta = {reason: after[component][(t, reason)] - before[component].get((t, reason), 0)
                 for (t, reason) in after[component] if t == type_name}
        for r, expect in items:
            usable = [reason for reason, n in delta.items() if n > 0 and
                      (not expect.reasons or any(reason.startswith(p) for p in expect.reasons))]
            if usable:
                delta[usable[0]] -= 1
                table[(r.kind, r.topic)][component].outcomes[f"ignored ({usable[0]})"] += 1
            else:
                unaccounted.append(f"{r.kind} on {r.topic} -> {component}: neither dead-lettered nor counted "
                                   f"as ignored (ignored counter deltas for {type_name}: {delta})")
                table[(r.kind, r.topic)][component].outcomes["NOTHING"] += 1
    return table, unaccounted


def _table_text(table, by_topic, types_of) -> str:
    kinds = list(dict.fromkeys(k for k, _ in table))
    lines = ["| kind | topic | type | outcome per reader |", "|---|---|---|---|"]
    for kind in kinds:
        for name in by_topic:
            cells = table.get((kind, name))
            if not cells:
                continue
            text = "; ".join(f"{c}: {cell.text()}" for c, cell in sorted(cells.items()))
            lines.append(f"| {kind} | {name} | {types_of.get((kind, name)) or '-'} | {text} |")
    return "\n".join(lines) + "\n"
