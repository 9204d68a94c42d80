"""opengym trace CORRELATION_ID: one transaction as the three-level tree, each node with its status and
timings, and what is still expected and for how long (read from the fact topics, judged by the catalog)."""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timezone

from opengym_streams.event import Event, now_ms
from opengym_streams.observer import Expectation, Observer, ObserverConfig, ProcessView, new_state

LEVEL_LABEL = {"orchestration": "ORCHESTRATION", "nested": "NESTED", "downstream": "DOWNSTREAM",
               "choreography": "CHOREOGRAPHY"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "trace", help="print one transaction as its three-level tree with status and timings",
        description="Reads every fact topic the catalog names (and the anomalies topic), keeps the events "
                    "of one correlation id, and prints each business transaction it belongs to: the "
                    "orchestration, its nested pairs and terminal event, the downstream processes and the "
                    "choreography, with what is still expected and by when.")
    parser.add_argument("correlation_id", help="the business transaction id (for a booking: its booking_id)")
    parser.add_argument("--now", type=int, default=None, help="judge deadlines at this epoch-ms time (default: now)")
    parser.add_argument("--json", action="store_true", help="print the tree as JSON")
    parser.set_defaults(handler=_trace)


def _trace(args) -> int:
    from opengym_streams.observe import observed_topics, outputs
    from opengym_streams.system import load

    system = load()
    catalog = system.processes()
    observer = Observer(catalog, ObserverConfig.from_env())
    events = read_events(args.correlation_id, list(observed_topics(system, catalog)))
    anomalies = read_events(args.correlation_id, [t for t in outputs(system) if t.kind == "anomalies"])
    if not events:
        print(f"opengym trace: no catalog fact carries correlation id {args.correlation_id!r}", file=sys.stderr)
        return 1
    now = args.now if args.now is not None else now_ms()
    state = build_state(observer, events)
    if args.json:
        print(json.dumps(as_json(observer, state, now, anomalies), indent=2))
    else:
        print(render(observer, state, args.correlation_id, now, anomalies))
    return 0


def read_events(correlation_id: str, sources) -> list[Event]:
    """Every event keyed by ``correlation_id`` on these topics, read from the start to the current end."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from opengym_streams.codec import AvroCodec, DecodeError
    from opengym_streams.kafka import consumer
    from opengym_streams.topic import topic_name

    codec = AvroCodec(auto_register=False)
    client = consumer(f"opengym-trace-{uuid.uuid4()}")
    wanted = correlation_id.encode()
    found: list[Event] = []
    try:
        assignment, ends = [], {}
        for topic in sources:
            name = topic_name(topic)
            meta = client.list_topics(name, timeout=10).topics.get(name)
            if meta is None or meta.error is not None:
                continue
            for partition in meta.partitions:
                end = client.get_watermark_offsets(TopicPartition(name, partition), timeout=10)[1]
                if end > 0:
                    ends[(name, partition)] = end
                    assignment.append(TopicPartition(name, partition, OFFSET_BEGINNING))
        if not assignment:
            return []
        client.assign(assignment)
        positions = {key: 0 for key in ends}
        deadline = time.monotonic() + 60
        while any(positions[k] < ends[k] for k in ends) and time.monotonic() < deadline:
            msg = client.poll(0.5)
            if msg is None or msg.error():
                continue
            positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            if msg.key() != wanted:
                continue
            try:
                found.append(codec.decode(msg.value()))
            except DecodeError:
                continue
    finally:
        client.close()
    return sorted(found, key=lambda e: e.occurred_at)


def build_state(observer: Observer, events: list[Event]) -> dict:
    state = new_state()
    for event in events:
        state = observer.on_event(state, event, 0).state or state
    return state


def _at(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def _span(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    if ms < 120_000:
        return f"{sign}{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{sign}{ms / 60_000:.1f} min"
    return f"{sign}{ms / 3_600_000:.1f} h"


def _expectation_line(exp: Expectation, now: int, grace_ms: int, reported: set[str]) -> str:
    status = exp.status(now, grace_ms)
    what = exp.expected
    if status == "met":
        return f"met: {what} (after {_span(exp.met_at - exp.since)})"
    if status == "late":
        return f"LATE: {what} (came {_span(exp.met_at - exp.deadline)} after the deadline) -> {exp.kind}"
    if status == "overdue":
        return f"OVERDUE: {what} (due {_at(exp.deadline)}, {_span(now - exp.deadline)} ago) -> {exp.kind}"
    return f"still expected: {what} (due {_at(exp.deadline)}, in {_span(exp.deadline - now)})"


def render(observer: Observer, state: dict, correlation_id: str, now: int, anomalies=()) -> str:
    views = observer.processes(state, now)
    reported = set(state["r"])
    grace = observer.config.grace_ms
    judged = datetime.fromtimestamp(now / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"Transaction {correlation_id} (judged at {judged} UTC; times below are UTC)"]

    def node(view: ProcessView, indent: str, owner: str | None) -> None:
        took = (f", took {_span(view.ended_at - view.started_at)}"
                if view.ended_at is not None and view.started_at is not None else "")
        outcome = f" -> {view.outcome}" if view.outcome else ""
        lines.append(f"{indent}{LEVEL_LABEL[view.level]} {view.process} "
                     f"({f'owner {owner}' if owner else 'no owner'}): {view.status}{outcome} "
                     f"[started {_at(view.started_at)}{took}]")
        for exp in view.expectations:
            lines.append(f"{indent}  - {_expectation_line(exp, now, grace, reported)}")

    for bt in observer.catalog.transactions:
        mine = {v.process: v for v in views if v.business_transaction == bt.name}
        if not mine:
            continue
        lines.append(bt.name)
        orch = bt.orchestration
        if orch is not None and orch.name in mine:
            node(mine[orch.name], "  ", orch.owner)
            for pair in orch.nested:
                if pair.name in mine:
                    node(mine[pair.name], "    ", pair.participant)
            ended = mine[orch.name].outcome
            lines.append(f"  TERMINAL {ended + ' at ' + _at(mine[orch.name].ended_at) if ended else 'not yet: awaiting ' + ' | '.join(orch.terminal)}")
        for proc in bt.downstream:
            if proc.name in mine:
                node(mine[proc.name], "    ", proc.owner)
        chain = bt.choreography
        if chain is not None and chain.name in mine:
            node(mine[chain.name], "  ", None)
    if anomalies:
        lines.append("Anomalies reported by the observer:")
        for a in sorted(anomalies, key=lambda a: a.detected_at):
            lines.append(f"  {a.kind.value} {a.process}: expected {a.expected}; since {_at(a.since)}, due "
                         f"{_at(a.deadline)}, detected {_at(a.detected_at)}")
    return "\n".join(lines)


def as_json(observer: Observer, state: dict, now: int, anomalies=()) -> dict:
    grace = observer.config.grace_ms
    return {
        "now": now,
        "processes": [{
            "business_transaction": v.business_transaction, "process": v.process, "level": v.level,
            "status": v.status, "started_at": v.started_at, "ended_at": v.ended_at, "outcome": v.outcome,
            "expectations": [{"kind": e.kind, "expected": e.expected, "since": e.since, "deadline": e.deadline,
                              "met_at": e.met_at, "status": e.status(now, grace)} for e in v.expectations],
        } for v in observer.processes(state, now)],
        "anomalies": [a.to_json_dict() for a in anomalies],
    }
