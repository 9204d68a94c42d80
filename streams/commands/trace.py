"""opengym trace CORRELATION_ID: one transaction as the three-level tree, each node with its status and
timings, and what is still expected and for how long.

Asked of a running observer first (its JSON API, :mod:`streams.ui`: the state it holds, judged at its
clock); when none answers for these topics, or it no longer holds the transaction, read from the fact
topics and judged with the same engine and catalog, saying so on stderr."""

from __future__ import annotations

import json
import sys
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
    parser.add_argument("--from-topics", action="store_true",
                        help="read the topics even when an observer is running")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds the topic scan may take before it fails (default %(default)s)")
    parser.set_defaults(handler=_trace)


def _trace(args) -> int:
    from opengym_streams.observe import observed_topics, outputs
    from opengym_streams.system import load

    system = load()
    catalog = system.processes()
    observer = Observer(catalog, ObserverConfig.from_env())
    state, anomalies, now = (None, [], None) if args.from_topics else _from_observer(args.correlation_id)
    if state is None:
        from opengym_streams.kafka_read import ReadTimeout

        try:
            events = read_events(args.correlation_id, list(observed_topics(system, catalog)), args.timeout)
            anomalies = read_events(args.correlation_id, [t for t in outputs(system) if t.kind == "anomalies"],
                                    args.timeout)
        except ReadTimeout as exc:
            print(f"opengym trace: {exc}; nothing printed rather than a part (raise --timeout)", file=sys.stderr)
            return 1
        if not events:
            print(f"opengym trace: no catalog fact carries correlation id {args.correlation_id!r}", file=sys.stderr)
            return 1
        state = build_state(observer, events)
    now = args.now if args.now is not None else (now or now_ms())
    if args.json:
        print(json.dumps(as_json(observer, state, now, anomalies), indent=2))
    else:
        print(render(observer, state, args.correlation_id, now, anomalies))
    return 0


def _from_observer(correlation_id: str):
    """(state, anomalies, observer time) from a running observer, or (None, [], None) saying why not."""
    from urllib.parse import quote

    from opengym_streams.codec import build_event
    from opengym_streams.settings import get_settings
    from opengym_streams.ui.client import ask, observer_url

    answer = ask(f"/api/transactions/{quote(correlation_id, safe='')}", prefix=get_settings().topic_prefix)
    if answer.why_not is None and answer.status == 200 and answer.data.get("in_state"):
        print(f"opengym trace: from the observer at {observer_url()} (its state, judged at its clock)",
              file=sys.stderr)
        anomalies = [build_event(a, fill_envelope=False) for a in answer.data.get("anomalies_published", ())]
        return answer.data["state"], anomalies, answer.data["now"]
    why = answer.why_not or (f"the observer at {observer_url()} holds no state for {correlation_id!r} (it closed "
                             "and left state, or no catalog fact carries it)")
    print(f"opengym trace: {why}; reading the topics instead", file=sys.stderr)
    return None, [], None


def read_events(correlation_id: str, sources, timeout: float = 120.0) -> list[Event]:
    """Every event keyed by ``correlation_id`` on these topics, read from the start to the current end
    (:class:`opengym_streams.kafka_read.ReadTimeout` when that takes longer than ``timeout``)."""
    from opengym_streams.codec import AvroCodec, DecodeError
    from opengym_streams.kafka_read import read_to_end
    from opengym_streams.topic import topic_name

    codec = AvroCodec(auto_register=False)
    wanted = correlation_id.encode()
    found: list[Event] = []
    for msg in read_to_end([topic_name(t) for t in sources], timeout=timeout):
        if msg.key() != wanted:
            continue
        try:
            found.append(codec.decode(msg.value()))
        except DecodeError:
            continue
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
