"""The declarative process catalog: business transactions, their orchestrations, nested pairs,
terminal events, downstream processes and choreographies, as data the observer and the checks read.

Events are named by their record short name (``InstrumentConsumeRequested``); durations are in
milliseconds. A system declares its own catalog and hands it to whatever reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

from opengym_streams.settings import env_ms  # noqa: F401  (durations are knobs; re-exported for catalogs)


@dataclass(frozen=True)
class NestedPair:
    """A correlated request/response an orchestration waits on: the participant owns it."""

    name: str
    participant: str
    request: str
    replies: tuple[str, ...]
    """The closed set of replies; any one of them completes the pair (joined by causation_id)."""
    deadline_ms: int
    compensation: bool = False
    """True for a pair that undoes a step (it is not awaited by the forward path)."""
    deadline_from: str = "request"
    """``request``: the deadline runs from the request; ``trigger``: from the orchestration's trigger
    (the owner gives the whole orchestration one deadline, as Reservation does)."""
    doc: str = ""

    @property
    def owner(self) -> str:
        return self.participant


Build = Callable[[dict, Any, int], Any]
"""Makes one event of an orchestration: ``(data, cause, now) -> event`` (pure)."""


@dataclass(frozen=True)
class Reply:
    """One reply of a step's closed set, and what it means to the orchestration."""

    event: str
    succeeds: bool
    keep: Callable[[Any], dict] | None = None
    """What a success reply adds to the orchestration's data (read by later steps and the terminal)."""
    reason: Callable[[Any], Any] | None = None
    """Why a failure reply fails the orchestration (the failure terminal's reason)."""


def succeeds(event: str, keep: Callable[[Any], dict] | None = None) -> Reply:
    return Reply(event, True, keep=keep)


def fails(event: str, reason: Callable[[Any], Any]) -> Reply:
    return Reply(event, False, reason=reason)


@dataclass(frozen=True)
class Compensation:
    """What undoes a step that succeeded, once the orchestration has failed."""

    request: str
    build: Build
    process: str | None = None
    """The nested process the observer follows for it (None: undone inside the owner)."""
    replies: tuple[str, ...] = ()
    deadline_ms: int = 0
    outcome: str | None = None
    """The outcome counted each time it is sent (None: not counted)."""
    doc: str = ""


@dataclass(frozen=True)
class Step:
    """One line of an orchestration's step table: ask a participant, wait in a phase for one of a closed
    set of replies until a deadline, and how to undo it."""

    name: str
    participant: str
    request: str
    ask: Build
    replies: tuple[Reply, ...]
    waits_in: str
    """The phase the orchestration is in while it waits for this step's reply."""
    deadline_ms: int
    on_timeout: Any
    """The failure reason when the deadline passes with no reply."""
    deadline_from: str = "trigger"
    """``trigger``: the deadline runs from the orchestration's start; ``request``: from this step's request."""
    late_reply: str = "accept"
    """``time_out``: a reply dated after the deadline fails the step as a timeout even when no tick has said
    so yet (the owner then decides exactly as the observer judges); ``accept``: it counts."""
    compensation: Compensation | None = None
    process: str | None = None
    """The nested process the observer follows (None: a step inside the owner, which it does not see)."""
    doc: str = ""

    @cached_property
    def reply_names(self) -> tuple[str, ...]:
        return tuple(r.event for r in self.replies)

    def reply(self, event: str) -> Reply:
        return next(r for r in self.replies if r.event == event)

    @property
    def invokes(self) -> str | None:
        return self.process

    @property
    def compensated_by(self) -> str | None:
        return self.compensation.process if self.compensation is not None else None


@dataclass(frozen=True)
class Terminal:
    """An orchestration's terminal event: how it is made and what outcome it counts."""

    event: str
    build: Callable[..., Any]
    """Success: ``(data, cause, now)``; failure: ``(data, cause, now, reason)``."""
    outcome: str | Callable[[Any], str]


@dataclass(frozen=True)
class Orchestration:
    """A process with one owner that drives it: it starts on a trigger, runs its step table and ends on a
    terminal event. The runtime executes it (:mod:`streams.saga`); the observer, the ownership check and
    the docs read the same object."""

    name: str
    owner: str
    trigger: str
    start: Callable[[Any], dict]
    """The orchestration's data from its trigger."""
    steps: tuple[Step, ...]
    succeeded: Terminal
    failed: Terminal
    succeeded_phase: str = "SUCCEEDED"
    failed_phase: str = "FAILED"
    doc: str = ""

    @cached_property
    def terminal(self) -> tuple[str, ...]:
        return (self.succeeded.event, self.failed.event)

    @cached_property
    def nested(self) -> tuple["NestedPair", ...]:
        """The steps other components answer, and their compensations, as the observer's nested pairs
        (built once: the observer asks for them for every fact it reads)."""
        pairs: list[NestedPair] = []
        for step in self.steps:
            if step.process is not None:
                pairs.append(NestedPair(step.process, step.participant, step.request, step.reply_names,
                                        step.deadline_ms, deadline_from=step.deadline_from, doc=step.doc))
        for step in self.steps:
            comp = step.compensation
            if comp is not None and comp.process is not None:
                pairs.append(NestedPair(comp.process, step.participant, comp.request, comp.replies,
                                        comp.deadline_ms, compensation=True, doc=comp.doc))
        return tuple(pairs)

    @cached_property
    def participants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(pair.participant for pair in self.nested))


@dataclass(frozen=True)
class DownstreamProcess:
    """A process its reacting component owns, triggered by a terminal event; nobody waits on it."""

    name: str
    owner: str
    trigger: str
    start: str
    completion: str
    start_within_ms: int
    complete_within_ms: int
    """Measured from the trigger, like start_within_ms."""
    doc: str = ""

    @property
    def single_fact(self) -> bool:
        return self.start == self.completion


@dataclass(frozen=True)
class Fact:
    """One hop of a choreography: any of ``events`` (produced by ``producer``) moves the chain on."""

    events: tuple[str, ...]
    producer: str
    stall_after_ms: int | None = None
    """How long the chain may wait for the next hop after this one; None on the last hop."""
    where: tuple[tuple[str, Any], ...] = ()
    """Field values the event must carry to count (e.g. partner_visit=True on the first hop)."""

    def matches(self, event_type: str, attrs: dict[str, Any]) -> bool:
        return event_type in self.events and all(attrs.get(k) == v for k, v in self.where)

    @property
    def label(self) -> str:
        names = " | ".join(self.events)
        if self.where:
            names += "(" + ", ".join(f"{k}={v!r}".replace("True", "true").replace("False", "false")
                                     for k, v in self.where) + ")"
        return names


@dataclass(frozen=True)
class Choreography:
    """A process nobody owns: the chain of facts, each component reacting to the previous one."""

    name: str
    facts: tuple[Fact, ...]
    doc: str = ""

    @property
    def outcomes(self) -> tuple[str, ...]:
        return self.facts[-1].events

    @property
    def producers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.producer for f in self.facts))


@dataclass(frozen=True)
class BusinessTransaction:
    """What a member or a gym experiences as one thing, keyed by one correlation id."""

    name: str
    orchestration: Orchestration | None = None
    downstream: tuple[DownstreamProcess, ...] = ()
    choreography: Choreography | None = None
    doc: str = ""

    def processes(self) -> Iterator[Any]:
        if self.orchestration is not None:
            yield self.orchestration
            yield from self.orchestration.nested
        yield from self.downstream
        if self.choreography is not None:
            yield self.choreography


@dataclass(frozen=True)
class Role:
    """What one event type means to one process of the catalog."""

    business_transaction: str
    process: str
    role: str
    """trigger | terminal | request | reply | start | completion | hop"""
    index: int = 0
    """The hop's position, for choreography facts."""


@dataclass(frozen=True)
class Catalog:
    transactions: tuple[BusinessTransaction, ...]
    observer: str = "correlation"
    """The component that observes every process and publishes only its anomalies."""
    doc: str = field(default="", compare=False)

    @cached_property
    def roles(self) -> dict[str, tuple[Role, ...]]:
        """Event short name -> every role it plays (the observer's dispatch table)."""
        found: dict[str, list[Role]] = {}

        def add(event: str, role: Role) -> None:
            found.setdefault(event, []).append(role)

        for bt in self.transactions:
            orch = bt.orchestration
            if orch is not None:
                add(orch.trigger, Role(bt.name, orch.name, "trigger"))
                for event in orch.terminal:
                    add(event, Role(bt.name, orch.name, "terminal"))
                for pair in orch.nested:
                    add(pair.request, Role(bt.name, pair.name, "request"))
                    for event in pair.replies:
                        add(event, Role(bt.name, pair.name, "reply"))
            for proc in bt.downstream:
                add(proc.trigger, Role(bt.name, proc.name, "trigger"))
                add(proc.start, Role(bt.name, proc.name, "start"))
                if not proc.single_fact:
                    add(proc.completion, Role(bt.name, proc.name, "completion"))
            if bt.choreography is not None:
                for index, fact in enumerate(bt.choreography.facts):
                    for event in fact.events:
                        add(event, Role(bt.name, bt.choreography.name, "hop", index))
        return {event: tuple(roles) for event, roles in found.items()}

    @cached_property
    def events(self) -> frozenset[str]:
        return frozenset(self.roles)

    @cached_property
    def attributes(self) -> dict[str, tuple[str, ...]]:
        """Event short name -> payload fields the observer must keep (the choreographies' ``where``)."""
        keep: dict[str, set[str]] = {}
        for bt in self.transactions:
            if bt.choreography is not None:
                for fact in bt.choreography.facts:
                    for event in fact.events:
                        keep.setdefault(event, set()).update(k for k, _ in fact.where)
        return {event: tuple(sorted(names)) for event, names in keep.items() if names}

    def nested_pair(self, name: str) -> NestedPair:
        for bt in self.transactions:
            if bt.orchestration is not None:
                for pair in bt.orchestration.nested:
                    if pair.name == name:
                        return pair
        raise KeyError(name)

    def process_names(self) -> list[tuple[str, str]]:
        """(business transaction, process) for every process, in catalog order."""
        return [(bt.name, proc.name) for bt in self.transactions for proc in bt.processes()]

    def transaction(self, name: str) -> BusinessTransaction:
        for bt in self.transactions:
            if bt.name == name:
                return bt
        raise KeyError(name)

    def producers(self) -> dict[str, set[str]]:
        """Event -> the components the catalog says produce it."""
        found: dict[str, set[str]] = {}
        for bt in self.transactions:
            orch = bt.orchestration
            if orch is not None:
                for event in orch.terminal:
                    found.setdefault(event, set()).add(orch.owner)
                for pair in orch.nested:
                    found.setdefault(pair.request, set()).add(orch.owner)
                    for reply in pair.replies:
                        found.setdefault(reply, set()).add(pair.participant)
            for proc in bt.downstream:
                for event in {proc.start, proc.completion}:
                    found.setdefault(event, set()).add(proc.owner)
            if bt.choreography is not None:
                for fact in bt.choreography.facts:
                    for event in fact.events:
                        found.setdefault(event, set()).add(fact.producer)
        return found

    def consumption(self, include_self: bool = True) -> list[tuple[str, str]]:
        """(consumer component, event) pairs the catalog implies (``include_self=False`` leaves out a
        choreography hop a component takes on its own fact, which needs no subscription)."""
        pairs: list[tuple[str, str]] = []
        for bt in self.transactions:
            orch = bt.orchestration
            if orch is not None:
                pairs.append((orch.owner, orch.trigger))
                for pair in orch.nested:
                    pairs.append((pair.participant, pair.request))
                    pairs += [(orch.owner, reply) for reply in pair.replies]
            pairs += [(proc.owner, proc.trigger) for proc in bt.downstream]
            if bt.choreography is not None:
                hops = bt.choreography.facts
                for before, after in zip(hops, hops[1:]):
                    if include_self or after.producer != before.producer:
                        pairs += [(after.producer, event) for event in before.events]
        pairs += [(self.observer, event) for event in sorted(self.events)]
        return pairs
