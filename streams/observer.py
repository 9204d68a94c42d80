"""The observer engine: (transaction state, event | tick) -> (new state, anomalies), pure and keyed by
correlation id, driven by the process catalog.

The state of one transaction is the set of catalog facts seen for it (deduplicated by event_id) plus
the anomalies already reported. Everything else (which pair is joined, which downstream process is
overdue, where a chain stalled) is *derived* from those facts and the observer's clock, so the result
does not depend on the order the facts arrived in, and a redelivered event changes nothing.

Time comes only from ticks (``now``) and from the facts' own ``occurred_at``: an expectation is
*overdue* when the clock has passed its deadline plus a grace (facts in flight on other topics), and
*late* when the fact that meets it carries an ``occurred_at`` after the deadline. Both are anomalies;
a late reply is also a nested timeout (the orchestration had given up by then).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from opengym_streams.catalog import Catalog
from opengym_streams.event import Event
from opengym_streams.models import AnomalyDetected, AnomalyKind
from opengym_streams.settings import from_env, knob

_ANOMALY_IDS = uuid.UUID("a3c1f0e2-5b7d-4c8e-9f10-2d3e4f5a6b7c")

NESTED_TIMEOUT = AnomalyKind.NESTED_TIMEOUT.value
LATE_REPLY = AnomalyKind.LATE_REPLY.value
REPLY_WITHOUT_REQUEST = AnomalyKind.REPLY_WITHOUT_REQUEST.value
DOWNSTREAM_NOT_STARTED = AnomalyKind.DOWNSTREAM_NOT_STARTED.value
DOWNSTREAM_NOT_COMPLETED = AnomalyKind.DOWNSTREAM_NOT_COMPLETED.value
CHAIN_STALLED = AnomalyKind.CHAIN_STALLED.value

NEVER = 2 ** 62

# Keys of the (JSON-serialisable) per-transaction state; short because there are many of them.
FACTS = "f"          # {event type: [[event_id, occurred_at, causation_id, attrs | None, source?], ...]}
REPORTED = "r"       # [anomaly key, ...]
ACTIVE = "a"         # observer time of the last fact
COMPLETED = "c"      # observer time everything closed, or None
WAKE = "n"           # next observer time a tick can change anything
IDS = "i"            # {payload field ending in _id: [value, ...]}, the business ids to search by (optional)

# A fact's fifth element, where it was read: [topic, partition, offset]. States written before it
# existed have four-element facts and no IDS; every reader below takes both.
SOURCE = 4


@dataclass(frozen=True)
class ObserverConfig:
    grace_ms: int = knob("OPENGYM_OBSERVER_GRACE_MS", 1000,
                         "how long past a deadline the observer waits before calling a fact missing (facts in flight)")
    orphan_grace_ms: int = knob("OPENGYM_OBSERVER_ORPHAN_GRACE_MS", 5000,
                                "how long a reply may wait for its request before it is a reply without request")
    retention_ms: int = knob("OPENGYM_OBSERVER_RETENTION_MS", 5 * 60 * 1000,
                             "how long a closed transaction stays in state (a late fact still joins it meanwhile)")
    idle_ms: int = knob("OPENGYM_OBSERVER_IDLE_MS", 48 * 60 * 60 * 1000,
                        "a transaction with no new fact for this long leaves state even if something is still open")
    watermark: bool = knob("OPENGYM_OBSERVER_WATERMARK", True,
                           "judge nothing past what has been read on every input partition (0: judge by ticks alone)")
    gauge_interval: float = knob("OPENGYM_OBSERVER_GAUGE_INTERVAL", 5.0,
                                 "seconds between exports of the in-flight and oldest-open gauges")
    decode_only: bool = knob("OPENGYM_OBSERVER_DECODE_ONLY", False,
                             "the benchmark's baseline: decode every record and do nothing else")

    @classmethod
    def from_env(cls) -> "ObserverConfig":
        return from_env(cls)


@dataclass(frozen=True)
class Expectation:
    """Something the catalog says must happen by a deadline, for one transaction."""

    business_transaction: str
    process: str
    kind: str
    """The anomaly it becomes when violated."""
    key: str
    """Which occurrence (request event id, hop, process name): part of the anomaly id."""
    expected: str
    since: int
    deadline: int
    met_at: int | None
    cause: str | None = None
    """event_id of the fact that started the expectation."""
    owner: str | None = None
    """The component that must produce the expected fact (who an anomaly here is routed to)."""

    def status(self, now: int, grace_ms: int) -> str:
        """met | late | open | overdue."""
        if self.met_at is not None:
            return "met" if self.met_at <= self.deadline else "late"
        return "overdue" if now >= self.deadline + grace_ms else "open"


@dataclass(frozen=True)
class ProcessView:
    """One node of the three-level tree, as ``opengym trace`` and the metrics see it."""

    business_transaction: str
    process: str
    level: str
    """orchestration | nested | downstream | choreography"""
    status: str
    """not started | in flight | done | anomalous"""
    started_at: int | None
    ended_at: int | None
    outcome: str | None
    expectations: tuple[Expectation, ...] = ()


@dataclass
class Outcome:
    state: dict | None
    """The new state; None when the transaction leaves (or never entered) state."""
    anomalies: list[AnomalyDetected] = field(default_factory=list)
    round_trips: list[tuple[str, float]] = field(default_factory=list)
    """(nested pair, seconds) for pairs this event joined."""
    changed: bool = False
    """Whether the state must be written back."""
    relevant: bool = True
    """False for events the catalog does not mention (kept nowhere)."""
    duplicate: bool = False
    conflict: str | None = None
    """Why a fact's event id, seen before, came back with other content (what the fact keeps differs)."""


def _plain(value: Any) -> Any:
    """As the changelog keeps it (JSON), so a fact read back from it compares equal to the same event."""
    return json.loads(json.dumps(value, default=str))


def anomaly_key(kind: str, process: str, key: str) -> str:
    return f"{kind}|{process}|{key}"


def anomaly_id(correlation_id: str, key: str) -> str:
    return str(uuid.uuid5(_ANOMALY_IDS, f"{correlation_id}|{key}"))


def new_state() -> dict:
    return {FACTS: {}, REPORTED: [], ACTIVE: 0, COMPLETED: None, WAKE: NEVER}


class Observer:
    """The pure engine over one catalog. All methods take and return plain data."""

    def __init__(self, catalog: Catalog, config: ObserverConfig | None = None):
        self.catalog = catalog
        self.config = config or ObserverConfig()

    # ---- input --------------------------------------------------------------------------------

    def on_event(self, state: dict | None, event: Event, now: int,
                 source: tuple[str, int, int] | None = None) -> Outcome:
        """Record one fact; report what it proves late (a late reply, a late start, a late hop).

        ``source`` (topic, partition, offset) is kept with the fact, for people reading the state."""
        event_type = type(event).__name__
        if event_type not in self.catalog.roles:
            return Outcome(state, relevant=False)
        state = state if state is not None else new_state()
        facts = state[FACTS].setdefault(event_type, [])
        keep = self.catalog.attributes.get(event_type)
        attrs = {name: getattr(event, name, None) for name in keep} if keep else None
        for f in facts:
            if f[0] == event.event_id:
                # occurred_at aside, as in the components' dedupe: an answer decided again after its
                # responder crashed is announced again later, with the same id and payload.
                if _plain(f[2:4]) != _plain([event.causation_id, attrs]):
                    return Outcome(state, conflict=f"event_id {event.event_id} was seen before with other content "
                                                   f"(causation_id, attributes {f[2:4]} vs "
                                                   f"{[event.causation_id, attrs]})")
                return Outcome(state, duplicate=True)
        fact = [event.event_id, event.occurred_at, event.causation_id, attrs]
        if source is not None:
            fact.append([str(source[0]), int(source[1]), int(source[2])])
        facts.append(fact)
        _note_ids(state, event)
        state[ACTIVE] = max(now, state[ACTIVE], event.occurred_at)
        state[COMPLETED] = None
        # Only ticks move the clock that makes facts overdue; the latest fact seen only dates the report
        # (a late reply can be proven by a fact that arrives after it, e.g. the request).
        outcome = self._evaluate(state, event.correlation_id, now, detected_at=state[ACTIVE])
        outcome.round_trips = self._joined_round_trips(state, event_type, event)
        outcome.changed = True
        return outcome

    def on_tick(self, state: dict, correlation_id: str, now: int) -> Outcome:
        """Advance the clock: report what became overdue; let closed or idle transactions go."""
        if now < state[WAKE]:
            return Outcome(state)
        outcome = self._evaluate(state, correlation_id, now)
        outcome.changed = True
        completed = state[COMPLETED]
        if (completed is not None and now >= completed + self.config.retention_ms) \
                or now >= state[ACTIVE] + self.config.idle_ms:
            outcome.state = None
        return outcome

    # ---- derived views ------------------------------------------------------------------------

    def expectations(self, state: dict) -> list[Expectation]:
        """Every expectation the transaction's facts arm, in catalog order."""
        facts: dict[str, list[list[Any]]] = state[FACTS]
        found: list[Expectation] = []
        for bt in self.catalog.transactions:
            orch = bt.orchestration
            if orch is not None:
                started = _first_time(facts.get(orch.trigger))
                for pair in orch.nested:
                    found.extend(self._pair_expectations(bt.name, pair, facts, started))
            for proc in bt.downstream:
                triggers = facts.get(proc.trigger)
                if not triggers:
                    continue
                trigger = min(triggers, key=lambda f: f[1])
                started = _first_time(facts.get(proc.start))
                found.append(Expectation(
                    bt.name, proc.name, DOWNSTREAM_NOT_STARTED, proc.name,
                    f"{proc.start} from {proc.owner} within {proc.start_within_ms} ms of {proc.trigger}",
                    trigger[1], trigger[1] + proc.start_within_ms, started, trigger[0], proc.owner))
                if not proc.single_fact and started is not None:
                    found.append(Expectation(
                        bt.name, proc.name, DOWNSTREAM_NOT_COMPLETED, proc.name,
                        f"{proc.completion} from {proc.owner} within {proc.complete_within_ms} ms of "
                        f"{proc.trigger}",
                        trigger[1], trigger[1] + proc.complete_within_ms,
                        _first_time(facts.get(proc.completion)), trigger[0], proc.owner))
            chain = bt.choreography
            if chain is not None:
                reached = [self._hop_fact(hop, facts) for hop in chain.facts]
                for index, hop in enumerate(chain.facts[:-1]):
                    here = reached[index]
                    if here is None:
                        continue
                    later = [f[1] for f in reached[index + 1:] if f is not None]
                    following = chain.facts[index + 1]
                    found.append(Expectation(
                        bt.name, chain.name, CHAIN_STALLED, f"hop{index + 1}",
                        f"{following.label} from {following.producer} within {hop.stall_after_ms} ms "
                        f"of {hop.label}",
                        here[1], here[1] + (hop.stall_after_ms or 0), min(later) if later else None, here[0],
                        following.producer))
        return found

    def processes(self, state: dict, now: int) -> list[ProcessView]:
        """The three-level tree of the transaction: every process its facts started."""
        facts = state[FACTS]
        grace = self.config.grace_ms
        expectations = self.expectations(state)
        reported = set(state[REPORTED])
        views: list[ProcessView] = []

        def status_of(mine: list[Expectation], ended: bool) -> str:
            keys = {anomaly_key(e.kind, e.process, e.key) for e in mine}
            if keys & reported or any(e.status(now, grace) in ("late", "overdue") for e in mine):
                return "anomalous"
            return "done" if ended else "in flight"

        for bt in self.catalog.transactions:
            orch = bt.orchestration
            if orch is not None:
                start = _first_time(facts.get(orch.trigger))
                terminal = _first_of(facts, orch.terminal)
                if start is not None or terminal is not None:
                    views.append(ProcessView(bt.name, orch.name, "orchestration",
                                             "done" if terminal else "in flight", start,
                                             terminal[1] if terminal else None,
                                             terminal[0] if terminal else None))
                for pair in orch.nested:
                    mine = [e for e in expectations if e.process == pair.name]
                    if not mine:
                        continue
                    reply = _first_of(facts, pair.replies)
                    requested = _first_time(facts.get(pair.request))
                    views.append(ProcessView(bt.name, pair.name, "nested",
                                             status_of(mine, reply is not None and requested is not None),
                                             requested, reply[1] if reply else None,
                                             reply[0] if reply else None, tuple(mine)))
            for proc in bt.downstream:
                mine = [e for e in expectations if e.process == proc.name]
                if not mine:
                    continue
                done = _first_time(facts.get(proc.completion))
                views.append(ProcessView(bt.name, proc.name, "downstream", status_of(mine, done is not None),
                                         _first_time(facts.get(proc.start)), done,
                                         proc.completion if done is not None else None, tuple(mine)))
            chain = bt.choreography
            if chain is not None:
                reached = [self._hop_fact(hop, facts) for hop in chain.facts]
                if any(reached):
                    mine = [e for e in expectations if e.process == chain.name]
                    outcome = _first_of(facts, chain.outcomes)
                    started = min(f[1] for f in reached if f is not None)
                    views.append(ProcessView(bt.name, chain.name, "choreography",
                                             status_of(mine, outcome is not None), started,
                                             outcome[1] if outcome else None,
                                             outcome[0] if outcome else None, tuple(mine)))
        return views

    # ---- internals ----------------------------------------------------------------------------

    def _pair_expectations(self, bt_name: str, pair, facts, triggered_at: int | None) -> list[Expectation]:
        requests = facts.get(pair.request, [])
        replies = [(name, f) for name in pair.replies for f in facts.get(name, [])]
        found = []
        request_ids = set()
        for request in requests:
            request_ids.add(request[0])
            answered = [f[1] for _, f in replies if f[2] == request[0]]
            since = triggered_at if pair.deadline_from == "trigger" and triggered_at is not None else request[1]
            found.append(Expectation(
                bt_name, pair.name, NESTED_TIMEOUT, request[0],
                f"{' | '.join(pair.replies)} from {pair.participant} within {pair.deadline_ms} ms of "
                f"{pair.request if since == request[1] else 'the orchestration start'}",
                since, since + pair.deadline_ms, min(answered) if answered else None, request[0],
                pair.participant))
        for name, reply in replies:
            if reply[2] not in request_ids:
                found.append(Expectation(
                    bt_name, pair.name, REPLY_WITHOUT_REQUEST, reply[0],
                    f"the {pair.request} that {name} answers (causation_id {reply[2]})",
                    reply[1], reply[1] + self.config.orphan_grace_ms, None, reply[0], pair.participant))
        return found

    @staticmethod
    def _hop_fact(hop, facts) -> list[Any] | None:
        matching = [f for name in hop.events for f in facts.get(name, [])
                    if not hop.where or all((f[3] or {}).get(k) == v for k, v in hop.where)]
        return min(matching, key=lambda f: f[1]) if matching else None

    def _evaluate(self, state: dict, correlation_id: str, now: int, detected_at: int | None = None) -> Outcome:
        detected_at = now if detected_at is None else detected_at
        grace = self.config.grace_ms
        reported: list[str] = state[REPORTED]
        anomalies: list[AnomalyDetected] = []
        wake = NEVER
        still_open = False

        def report(kind: str, exp: Expectation, expected: str) -> None:
            key = anomaly_key(kind, exp.process, exp.key)
            if key in reported:
                return
            reported.append(key)
            anomalies.append(self._anomaly(correlation_id, key, kind, exp, expected, detected_at))

        for exp in self.expectations(state):
            status = exp.status(now, grace)
            if status == "open":
                still_open = True
                wake = min(wake, exp.deadline + grace)
            elif status == "overdue":
                report(exp.kind, exp, exp.expected)
            elif status == "late":
                report(exp.kind, exp, exp.expected)
                if exp.kind == NESTED_TIMEOUT:
                    report(LATE_REPLY, exp, f"a reply within {exp.deadline - exp.since} ms; it came "
                                            f"{exp.met_at - exp.deadline} ms after the deadline")
        if not still_open and self._orchestrations_ended(state):
            if state[COMPLETED] is None:
                state[COMPLETED] = max(now, state[ACTIVE])
            wake = min(wake, state[COMPLETED] + self.config.retention_ms)
        else:
            state[COMPLETED] = None
        state[WAKE] = min(wake, state[ACTIVE] + self.config.idle_ms)
        return Outcome(state, anomalies)

    def _orchestrations_ended(self, state: dict) -> bool:
        facts = state[FACTS]
        for bt in self.catalog.transactions:
            orch = bt.orchestration
            if orch is not None and facts.get(orch.trigger) and not _first_of(facts, orch.terminal):
                return False
        return True

    def _joined_round_trips(self, state: dict, event_type: str, event: Event) -> list[tuple[str, float]]:
        trips = []
        facts = state[FACTS]
        for role in self.catalog.roles.get(event_type, ()):
            if role.role not in ("request", "reply"):
                continue
            pair = self.catalog.nested_pair(role.process)
            if role.role == "request":
                request_id, requested_at = event.event_id, event.occurred_at
                answers = [f for name in pair.replies for f in facts.get(name, []) if f[2] == request_id]
            else:
                request = next((f for f in facts.get(pair.request, []) if f[0] == event.causation_id), None)
                if request is None:
                    continue
                requested_at = request[1]
                answers = [f for name in pair.replies for f in facts.get(name, []) if f[2] == request[0]]
            if len(answers) == 1:
                trips.append((pair.name, max(0, answers[0][1] - requested_at) / 1000.0))
        return trips

    def _anomaly(self, correlation_id: str, key: str, kind: str, exp: Expectation, expected: str,
                 now: int) -> AnomalyDetected:
        the_id = anomaly_id(correlation_id, key)
        return AnomalyDetected(
            event_id=str(uuid.uuid5(_ANOMALY_IDS, f"event|{the_id}")),
            correlation_id=correlation_id,
            causation_id=exp.cause,
            occurred_at=now,
            anomaly_id=the_id,
            kind=AnomalyKind(kind),
            business_transaction=exp.business_transaction,
            process=exp.process,
            expected=expected,
            since=exp.since,
            deadline=exp.deadline,
            detected_at=now,
            process_owner=exp.owner,
        )


_ID_FIELDS: dict[type, tuple[str, ...]] = {}


def _note_ids(state: dict, event: Event) -> None:
    """Remember the business ids the fact carries (payload fields named ``*_id``), once per value."""
    fields = _ID_FIELDS.get(type(event))
    if fields is None:
        envelope = {"event_id", "correlation_id", "causation_id"}
        fields = _ID_FIELDS[type(event)] = tuple(
            name for name in type(event).model_fields if name.endswith("_id") and name not in envelope)
    if not fields:
        return
    ids = state.setdefault(IDS, {})
    for name in fields:
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            seen = ids.setdefault(name, [])
            if value not in seen:
                seen.append(value)
                seen.sort()


def fact_source(fact: list[Any]) -> tuple[str, int, int] | None:
    """(topic, partition, offset) a fact was read at; None for facts stored before sources were kept."""
    return tuple(fact[SOURCE]) if len(fact) > SOURCE and fact[SOURCE] else None


def business_ids(state: dict) -> dict[str, list[str]]:
    return state.get(IDS) or {}


def _first_time(facts: list[list[Any]] | None) -> int | None:
    return min(f[1] for f in facts) if facts else None


def _first_of(facts: dict, names: Iterable[str]) -> tuple[str, int] | None:
    """(event type, time) of the earliest fact of any of ``names``."""
    seen = [(name, f[1]) for name in names for f in facts.get(name, [])]
    return min(seen, key=lambda s: s[1]) if seen else None


class ObserverState:
    """Many transactions in a dict: the engine plus its keyed state, for tests, traces and benches."""

    def __init__(self, observer: Observer):
        self.observer = observer
        self.states: dict[str, dict] = {}
        self.now = 0

    def event(self, event: Event, now: int | None = None) -> Outcome:
        if now is not None:
            self.now = max(self.now, now)
        cid = event.correlation_id
        outcome = self.observer.on_event(self.states.get(cid), event, self.now)
        if outcome.relevant and outcome.state is not None:
            self.states[cid] = outcome.state
        return outcome

    def tick(self, now: int) -> list[AnomalyDetected]:
        self.now = max(self.now, now)
        found: list[AnomalyDetected] = []
        for cid in list(self.states):
            outcome = self.observer.on_tick(self.states[cid], cid, self.now)
            if outcome.state is None:
                del self.states[cid]
            found.extend(outcome.anomalies)
        return found


def open_processes(observer: Observer, state: dict, now: int) -> tuple[tuple[tuple[str, str, int], ...], int]:
    """The processes of one transaction in flight at ``now``, as ``(business transaction, process, open
    since)``, and the earliest time at which the clock alone can change that answer (an open expectation's
    deadline plus the grace: past it the process is anomalous, no longer in flight); NEVER when no clock
    can. Only a new state (a fact, a tick that changed it) changes it otherwise."""
    found: list[tuple[str, str, int]] = []
    until = NEVER
    grace = observer.config.grace_ms
    for view in observer.processes(state, now):
        if view.status != "in flight":
            continue
        for e in view.expectations:
            if e.met_at is None:
                until = min(until, e.deadline + grace)
        # A downstream process not started yet is open since its trigger.
        since = view.started_at if view.started_at is not None else min(
            (e.since for e in view.expectations), default=None)
        if since is not None:
            found.append((view.business_transaction, view.process, since))
    return tuple(found), until


def _gauges(observer: Observer) -> tuple[dict[str, int], dict[tuple[str, str], float]]:
    return ({bt.name: 0 for bt in observer.catalog.transactions},
            {pair: 0.0 for pair in observer.catalog.process_names()})


def _count(counts: dict[str, int], oldest: dict[tuple[str, str], float],
           found: tuple[tuple[str, str, int], ...], now: int) -> None:
    for bt, process, since in found:
        key = (bt, process)
        oldest[key] = max(oldest[key], max(0, now - since) / 1000.0)
    for name in {bt for bt, _, _ in found}:
        counts[name] += 1


def in_flight(observer: Observer, states: Iterable[dict], now: int) -> tuple[dict[str, int], dict[tuple[str, str], float]]:
    """Open transactions per business transaction, and the oldest open age (s) per process."""
    counts, oldest = _gauges(observer)
    for state in states:
        if state[COMPLETED] is None:
            _count(counts, oldest, open_processes(observer, state, now)[0], now)
    return counts, oldest


class InFlight:
    """:func:`in_flight` for a gauge exported every few seconds over thousands of open transactions: each
    transaction's open processes are derived once per state and kept until its next deadline, so an
    export walks the open states but derives only those that changed or whose deadline passed.

    A state only grows (facts and reported anomalies are appended, never removed), so how many of each it
    holds tells whether it changed since it was derived, whether the engine changed it in place or not."""

    def __init__(self, observer: Observer):
        self.observer = observer
        self._views: dict[str, tuple[tuple[int, int], int, tuple[tuple[str, str, int], ...]]] = {}
        self.derived = 0
        """How many states the last measurement derived (the others came from the cache)."""

    def measure(self, states: dict[str, dict], now: int) -> tuple[dict[str, int], dict[tuple[str, str], float]]:
        """The gauges over ``states`` (open transactions by correlation id) at ``now``."""
        counts, oldest = _gauges(self.observer)
        kept: dict[str, tuple[tuple[int, int], int, tuple[tuple[str, str, int], ...]]] = {}
        views = self._views
        derived = 0
        for key, state in states.items():
            if state[COMPLETED] is not None:
                continue
            view = views.get(key)
            version = (sum(map(len, state[FACTS].values())), len(state[REPORTED]))
            if view is None or view[0] != version or now >= view[1]:
                found, until = open_processes(self.observer, state, now)
                view = (version, until, found)
                derived += 1
            kept[key] = view
            _count(counts, oldest, view[2], now)
        self._views = kept
        self.derived = derived
        return counts, oldest


__all__ = ["Observer", "ObserverConfig", "ObserverState", "Outcome", "Expectation", "ProcessView",
           "anomaly_id", "business_ids", "fact_source", "in_flight", "InFlight", "open_processes"]
