"""The declarative process catalog: business transactions, their orchestrations, nested pairs,
terminal events, downstream processes and choreographies, as data the observer and the checks read.

Events are named by their record short name (``InstrumentConsumeRequested``); durations are in
milliseconds. OpenGym's own entries live beside the components, in ``agents/catalog.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator


def env_ms(name: str, default_ms: int) -> int:
    """A duration from ``OPENGYM_<NAME>_MS`` (tests set short deadlines this way), else the default."""
    raw = os.environ.get(f"OPENGYM_{name}_MS")
    if raw is None or raw == "":
        return default_ms
    value = int(raw)
    if value < 0:
        raise ValueError(f"OPENGYM_{name}_MS must not be negative, got {value}")
    return value


def env_name(process_name: str) -> str:
    """``InstrumentConsumeProcess`` -> ``INSTRUMENT_CONSUME_PROCESS`` (for :func:`env_ms`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", process_name).replace("-", "_").replace(" ", "_").upper()


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


@dataclass(frozen=True)
class Step:
    """One line of an orchestration's step table."""

    name: str
    doc: str
    invokes: str | None = None
    """Name of the nested pair this step waits on, if any."""
    compensated_by: str | None = None
    """Name of the compensating nested pair, if any."""


@dataclass(frozen=True)
class Orchestration:
    """A process with one owner that drives it: it starts on a trigger and ends on a terminal event."""

    name: str
    owner: str
    trigger: str
    steps: tuple[Step, ...]
    nested: tuple[NestedPair, ...]
    terminal: tuple[str, ...]
    doc: str = ""

    @property
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
