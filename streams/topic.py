"""Topics and the topic catalog: every topic of a system declared once, with its owner, key, events and
partitions, and the contract checks of the events it carries.

A system declares its topics as :class:`Topic` values and hands them to a :class:`TopicCatalog`; code
takes handles from it and never spells a topic name itself. Names are the contract; an
``OPENGYM_TOPIC_PREFIX`` (tests use it for isolation) is prepended at runtime by :func:`topic_name`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

from opengym_streams.checks import Check

EXTERNAL = "external"
"""Owner name for producers outside the system (members' apps, front desks, a demo driver)."""

CLOCK = "opengym.streams.ClockTicked"
DEAD_LETTER = "opengym.streams.DeadLetter"
DEAD_LETTER_REDRIVEN = "opengym.streams.DeadLetterRedriven"
ANOMALY = "opengym.correlation.AnomalyDetected"


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    """The one component that produces the facts on it (commands topics: the component they command)."""
    events: tuple[str, ...]
    """Avro full names of the records it carries: it admits these and nothing else."""
    kind: str
    """commands | requests | events | anomalies | clock | dlq | redrives | internal"""
    producers: tuple[str, ...] = ()
    """Who may write to it; defaults to the owner."""
    partitions: int = 4
    key: str = "correlation_id"
    """The event field the record key must equal (checked on every record read)."""
    doc: str = ""

    @property
    def writers(self) -> tuple[str, ...]:
        return self.producers or (self.owner,)

    @property
    def runtime_name(self) -> str:
        return topic_name(self)

    @cached_property
    def short_names(self) -> frozenset[str]:
        return frozenset(short(e) for e in self.events)


def short(avro_name: str) -> str:
    return avro_name.rsplit(".", 1)[-1]


def topic_name(topic: Topic) -> str:
    # Read the one variable instead of building the whole Settings (a profile of a worker showed that at
    # 5% of its CPU). Tests change the prefix per test, so no cache here; the runtime resolves its names once.
    return os.environ.get("OPENGYM_TOPIC_PREFIX", "") + topic.name


def dead_letter_topic(name: str, component: str, partitions: int) -> Topic:
    return Topic(name, component, (DEAD_LETTER,), kind="dlq", partitions=partitions,
                 doc=f"What {component} could not decode, what broke a contract, and what made its handler "
                     "fail, with the reason and where the original lies.")


def redrive_topic(name: str, component: str) -> Topic:
    return Topic(name, component, (DEAD_LETTER_REDRIVEN,), kind="redrives", producers=(EXTERNAL,), partitions=1,
                 doc=f"Which of {component}'s dead letters an operator re-published to their original topic "
                     "(opengym dlq redrive, or the observer's UI), one record per dead letter.")


class TopicCatalog:
    """A system's topics, with every dead-letter topic derived from the components that own topics.

    ``dead_letter_name`` makes a component's dead-letter topic name (e.g. ``"opengym.{component}.dlq"``),
    ``redrive_name`` the topic that records the redrives of its dead letters (optional);
    ``checks`` maps an event's short name to its contract check, applied wherever it is read;
    ``app_name`` makes a component's Faust app id (e.g. ``"opengym-{component}"``), which is also its
    consumer group and the prefix of its tables' changelog topics: give each system its own, so two systems
    on one broker never share a group or a changelog.
    """

    def __init__(self, declared: Iterable[Topic], *, dead_letter_name: str, partitions: int,
                 checks: Mapping[str, Check] | None = None, external: str = EXTERNAL, redrive_name: str | None = None,
                 app_name: str = "{component}"):
        declared = tuple(declared)
        self.partitions = partitions
        self.app_name = app_name
        self.external = external
        self.checks: dict[str, Check] = dict(checks or {})
        owners = tuple(dict.fromkeys(t.owner for t in declared if t.owner != external))
        self.dead_letters: dict[str, Topic] = {
            owner: dead_letter_topic(dead_letter_name.format(component=owner), owner, partitions) for owner in owners}
        self.redrives: dict[str, Topic] = {
            owner: redrive_topic(redrive_name.format(component=owner), owner) for owner in owners} if redrive_name else {}
        self.declared = declared
        self.all: tuple[Topic, ...] = declared + tuple(self.dead_letters.values()) + tuple(self.redrives.values())
        self.by_name: dict[str, Topic] = {t.name: t for t in self.all}
        if len(self.by_name) != len(self.all):
            raise ValueError("two topics share a name")
        self._home: dict[tuple[str, str], Topic] = {}

    def app_id(self, component: str) -> str:
        """A component's Faust app id, without the ``OPENGYM_TOPIC_PREFIX`` the runtime puts in front."""
        return self.app_name.format(component=component)

    @property
    def owners(self) -> tuple[str, ...]:
        """Every component that owns a topic, in declaration order."""
        return tuple(self.dead_letters)

    @cached_property
    def contract(self) -> tuple[Topic, ...]:
        """Topics other components (or outsiders) read or write: everything but internal and dead-letter topics."""
        return tuple(t for t in self.declared if t.kind != "internal")

    @cached_property
    def internal(self) -> tuple[Topic, ...]:
        return tuple(t for t in self.declared if t.kind == "internal")

    def carriers(self, avro_name: str) -> tuple[Topic, ...]:
        """The contract topics carrying a record, by full or short name."""
        if "." in avro_name:
            return tuple(t for t in self.contract if avro_name in t.events)
        return tuple(t for t in self.contract if avro_name in t.short_names)

    def topic_for_event(self, avro_name: str) -> Topic:
        """The one contract topic that carries a business event (clock ticks and dead letters have several)."""
        carriers = self.carriers(avro_name)
        if len(carriers) != 1:
            raise LookupError(f"{avro_name} is carried by {len(carriers)} topics; name the topic explicitly")
        return carriers[0]

    def home(self, avro_name: str, component: str) -> Topic:
        """Where ``component`` publishes a record: the one contract topic carrying it, else its own internal one."""
        key = (avro_name, component)
        found = self._home.get(key)
        if found is None:
            for candidates in (self.contract, tuple(t for t in self.internal if t.owner == component)):
                carriers = [t for t in candidates if avro_name in t.events]
                if len(carriers) == 1:
                    found = carriers[0]
                    break
            else:
                raise LookupError(f"{avro_name}: no single topic carries it; name the topic explicitly")
            self._home[key] = found
        return found

    def lookup(self, name: str, prefix: str | None = None) -> Topic:
        """A topic by contract name or by runtime (prefixed) name."""
        prefix = os.environ.get("OPENGYM_TOPIC_PREFIX", "") if prefix is None else prefix
        if prefix and name.startswith(prefix) and name[len(prefix):] in self.by_name:
            return self.by_name[name[len(prefix):]]
        if name in self.by_name:
            return self.by_name[name]
        raise LookupError(f"unknown topic {name!r}; known topics: {', '.join(sorted(self.by_name))}")

    def written_by(self, component: str) -> tuple[Topic, ...]:
        return tuple(t for t in self.all if component in t.writers)

    def owned_by(self, component: str) -> tuple[Topic, ...]:
        return tuple(t for t in self.all if t.owner == component)

    def check_for(self, short_name: str) -> Check | None:
        return self.checks.get(short_name)

    def __iter__(self):
        return iter(self.all)

