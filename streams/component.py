"""A component is a declaration: its agents, each a map from event type to a pure step, plus what each
emitted type counts as. The runtime (:mod:`streams.runtime`) does everything else.

::

    def build(settings=None) -> Component:
        config = from_env(BillingConfig)
        return Component(SYSTEM.component("tenant-billing"), topics=topics.CATALOG, settings=settings, agents=[
            Agent("record_billing_line", reads=[topics.RESERVATION_EVENTS], table="billing-lines",
                  handlers={"ReservationConfirmed": partial(logic.on_confirmed, config=config)},
                  outcomes={"BillingLineRecorded": "billed"}),
        ])

    __getattr__ = module_app(build)        # `faust -A agents.tenant_billing worker` finds `app`

For every record an agent reads, the runtime decodes it, admits only the types its topic carries,
checks the envelope (key = the topic's key field, ids, dates) and the event's contract, then either
forwards it (``forward``), hands it to its handler, or counts it as ignored: a type the topic carries
that this agent has no handler for, another component's clock tick. The handler's state is the record
under the message key in the agent's table; the runtime dedupes by event id (a duplicate with other
content is dead-lettered as a conflict), publishes what the handler returns, counts the outcomes and
stores the new state. :func:`apply` is that step without Kafka, which the runtime and the test harness
(:mod:`streams.testing`) share.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from opengym_streams.catalog import Orchestration
from opengym_streams.event import Event, Handler, Ignored, value_of
from opengym_streams.settings import Settings
from opengym_streams.tables import Wake
from opengym_streams.topic import Topic, TopicCatalog, short

if TYPE_CHECKING:
    from opengym_streams.runtime import Runtime
    from opengym_streams.system import ComponentSpec

SEEN_LIMIT = 64
"""How many processed event ids a state record keeps for dedupe (the newest ones)."""

OUTBOX = "outbox"
"""A stored record's events decided on a clock tick and not yet known to be delivered (see
:meth:`opengym_streams.runtime.Processor.settle_decisions`)."""

CLOCK_TICKED = "ClockTicked"

Outcome = "str | Callable[[Event], str]"


def labelled(prefix: str, field_name: str) -> Callable[[Event], str]:
    """An outcome label from a field of the emitted event: ``labelled("denied", "reason")`` -> ``denied:<reason>``."""
    def label(event: Event) -> str:
        return f"{prefix}:{value_of(getattr(event, field_name))}"
    return label


@dataclass(frozen=True)
class Agent:
    """One Faust agent of a component: the topics it reads and what it does with each event type."""

    name: str
    reads: tuple[Topic, ...]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    """Event short name -> pure step ``(state, event, now) -> (state, events) | Ignored``."""
    table: str | None = None
    """The state table, keyed by the record key (so co-partitioned with every topic the agent reads)."""
    outcomes: Mapping[str, Any] = field(default_factory=dict)
    """Emitted type -> the outcome it counts (a label, or a function of the emitted event)."""
    forward: Mapping[str, Topic] = field(default_factory=dict)
    """Event short name -> topic to forward the same bytes to, re-keyed by that topic's key."""
    wake: Wake | None = None
    """When a state wants its next tick (ticks visit only due states); needed to handle ClockTicked."""
    dedupe: bool = True
    """Remember processed event ids in each state record (off: the handler dedupes itself)."""
    reanswer: bool = False
    """A responder: a redelivered request (same id, same content) goes to its handler again and what it
    answers is published again, nothing stored; its handlers must answer a repeat with what they said
    the first time. An orchestrator that lost its state in a crash and asks again is then never left
    waiting."""
    now: Callable[[], int] | None = None
    """The time handlers are given for events (default: wall clock)."""
    tick_time: Callable[[int, int], int] | None = None
    """``(partition, tick.now) -> now`` for a tick (default: the tick's own time)."""
    observe: Callable[[Any, "Event | None"], None] | None = None
    """Called with every record read (and its event, None when it does not decode), before anything else."""
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", tuple(self.reads))
        carried = {name for topic in self.reads for name in topic.short_names}
        for name in [*self.handlers, *self.forward]:
            if name not in carried:
                raise ValueError(f"agent {self.name}: handles {name}, which none of its topics carries "
                                 f"({', '.join(t.name for t in self.reads)})")
        if CLOCK_TICKED in self.handlers and (self.wake is None or self.table is None):
            raise ValueError(f"agent {self.name}: handling ClockTicked needs a table and a wake function")

    @classmethod
    def orchestrating(cls, orchestration: Orchestration, *, name: str, reads: Iterable[Topic], table: str,
                      forward: Mapping[str, Topic] | None = None, doc: str = "") -> "Agent":
        """An agent that runs an orchestration's step table (:class:`streams.saga.Saga`)."""
        from opengym_streams.saga import Saga

        saga = Saga(orchestration)
        return cls(name, tuple(reads), handlers=saga.handlers(), table=table, outcomes=saga.outcomes(),
                   forward=dict(forward or {}), wake=saga.wake_at, doc=doc or orchestration.doc)

    def outcome_of(self, event: Event) -> str | None:
        label = self.outcomes.get(event.type_name)
        if label is None or isinstance(label, str):
            return label
        return label(event)


class Component:
    """A component declared: its name (and registry entry), topic catalog and agents. ``app`` builds the
    Faust app on first use (``faust -A`` reads it); ``runtime`` is what runs it."""

    def __init__(self, spec: "ComponentSpec | str", *, topics: TopicCatalog, agents: Iterable[Agent],
                 clock: Topic | None = None, settings: Settings | None = None,
                 timers: Iterable[tuple[float, Callable[[], Any]]] = (), catalog: Any = None,
                 on_app: Iterable[Callable[["Runtime"], Any]] = (), doc: str = ""):
        self.name = spec if isinstance(spec, str) else spec.name
        self.metrics_port = None if isinstance(spec, str) else spec.metrics_port
        self.system = None if isinstance(spec, str) else spec.system
        """The system it belongs to (its contracts); None: the configured one."""
        self.topics = topics
        self.agents: tuple[Agent, ...] = tuple(agents)
        self.clock = clock
        self.settings = settings or Settings.from_env()
        self.timers = tuple(timers)
        self.catalog = catalog
        """The process catalog, for an observer (its anomaly series are created at zero on start)."""
        self.on_app = tuple(on_app)
        """Called with the runtime once its Faust app is built and wired (to add web views, say)."""
        self.doc = doc
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: two agents share a name")

    def agent(self, name: str) -> Agent:
        return next(a for a in self.agents if a.name == name)

    @cached_property
    def runtime(self) -> "Runtime":
        from opengym_streams.runtime import Runtime

        return Runtime(self)

    @property
    def app(self):
        return self.runtime.app

    def reads(self) -> frozenset[str]:
        """Contract names of every topic the component's agents read."""
        return frozenset(t.name for a in self.agents for t in a.reads)


def module_app(build: Callable[[], Component]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that builds the component's app on first access (``faust -A pkg worker``
    looks for ``pkg.app``), so importing a component module builds nothing."""
    built: dict[str, Any] = {}

    def __getattr__(name: str) -> Any:
        if name != "app":
            raise AttributeError(name)
        if "app" not in built:
            built["app"] = build().app
        return built["app"]

    return __getattr__


# ---- the step every handled event takes, without Kafka ------------------------------------------------


FINGERPRINT_VERSION = "p1:"


def fingerprint(event: Event | None) -> str | None:
    """What "the same content" means for dedupe: every field of the event but ``occurred_at``.

    A responder that crashed after publishing an answer and before its state reached the changelog
    decides the same request again when it is read again, and announces the same answer (same derived
    id, same payload) later: that is a redelivery, not a conflict. A changed payload under a known
    event id is a conflict. Versioned: a fingerprint stored by an older runtime (a hash of the Avro body)
    is not comparable, and such a redelivery counts as a duplicate."""
    if event is None:
        return None
    data = event.model_dump(mode="json", exclude={"occurred_at"})
    body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return FINGERPRINT_VERSION + hashlib.blake2b(body, digest_size=8).hexdigest()


RECORD_KEYS = frozenset({"state", "seen", OUTBOX, "parked"})
PARKED = "parked"
PARKED_LIMIT = 16
"""How many events waiting for their state (:func:`opengym_streams.event.not_yet`) one key keeps."""


def unpack(record: dict | None) -> tuple[dict | None, list]:
    """(state, seen) from a stored record ``{"state": ..., "seen": [[event_id, fingerprint], ...]}``
    (plus, when there are any, the events it waits with, ``parked``, and its ``outbox``).

    A record written before states were wrapped (the state itself, its ``seen`` a list of ids) still reads.
    """
    if record is None:
        return None, []
    if "state" in record and "seen" in record and record.keys() <= RECORD_KEYS:
        return record["state"], record["seen"]
    seen = [[i, None] for i in record.get("seen", ())]
    return {k: v for k, v in record.items() if k != "seen"}, seen


@dataclass
class Applied:
    """What handling one event comes to: the verdict, the events to publish and the record to store."""

    verdict: str
    """handled | ignored | duplicate | conflict | parked"""
    events: list[Event] = field(default_factory=list)
    record: dict | None = None
    write: bool = False
    reason: str | None = None
    unparked: int = 0
    """Parked events this one let through (handled after it)."""
    settled: list = field(default_factory=list)
    """``(event type, reason)`` of parked events that got a final answer other than handling (to count)."""


def apply(agent: Agent, handler: Handler, record: dict | None, event: Event, now: int,
          content: str | None, may_wait: "bool | Callable[[], bool]" = False) -> Applied:
    """Dedupe, run the handler, and say what to publish and store (the runtime does it).

    ``may_wait``: facts that could come before this event are still unread (the runtime's
    :class:`~opengym_streams.progress.Progress` says so); a handler's :func:`~opengym_streams.event.not_yet`
    then parks the event in the record instead of taking its ``otherwise`` answer. After an event changes
    the state, the parked events are handed to their handlers again, in the order they came."""
    applied = _apply_one(agent, handler, record, event, now, content, may_wait)
    if applied.verdict == "handled" and applied.record is not None and applied.record.get(PARKED):
        applied = _unpark(agent, applied, now, may_wait)
    return applied


def _apply_one(agent: Agent, handler: Handler, record: dict | None, event: Event, now: int,
               content: str | None, may_wait: "bool | Callable[[], bool]") -> Applied:
    parked: list = []
    if agent.dedupe:
        state, seen = unpack(record)
        parked = record.get(PARKED, []) if record is not None and "state" in record else []
        for event_id, known in seen:
            if event_id == event.event_id:
                if known is not None and content is not None and known != content \
                        and known.startswith(FINGERPRINT_VERSION):
                    return Applied("conflict", reason=f"event_id {event.event_id} was processed before with "
                                                      f"other content ({known} vs {content})")
                if not agent.reanswer:
                    return Applied("duplicate")
                again = handler(state, event, now)
                if isinstance(again, Ignored) or not again[1]:
                    return Applied("duplicate")
                return Applied("handled", list(again[1]))
    else:
        state, seen = record, []
    result = handler(state, event, now)
    if isinstance(result, Ignored) and result.waiting:
        if agent.dedupe and agent.table is not None and (may_wait() if callable(may_wait) else may_wait):
            for data, known in parked:
                if data.get("event_id") == event.event_id:
                    if known is not None and content is not None and known != content:
                        return Applied("conflict", reason=f"event_id {event.event_id} waits parked with other "
                                                          f"content ({known} vs {content})")
                    return Applied("duplicate")
            waiting = [*parked, [event.to_json_dict(), content]][-PARKED_LIMIT:]
            return Applied("parked", record={"state": state, "seen": seen, PARKED: waiting}, write=True,
                           reason=result.reason)
        result = result.otherwise if result.otherwise is not None else Ignored(result.reason)
    if isinstance(result, Ignored):
        verdict = "conflict" if result.conflict else "duplicate" if result.duplicate else "ignored"
        return Applied(verdict, reason=result.reason)
    new_state, events = result
    if not events and new_state is state:
        return Applied("ignored", reason=f"{getattr(handler, '__name__', 'handler')}: no effect")
    if agent.dedupe:
        new_record = {"state": new_state, "seen": [*seen, [event.event_id, content]][-SEEN_LIMIT:]}
        if parked:
            new_record[PARKED] = parked
    else:
        new_record = new_state
    return Applied("handled", list(events), new_record, write=agent.table is not None)


def _unpark(agent: Agent, applied: Applied, now: int, may_wait: "bool | Callable[[], bool]") -> Applied:
    """Hand the parked events of ``applied.record`` to their handlers again until none goes through."""
    from opengym_streams.codec import build_event

    record, events, unparked, settled = applied.record, list(applied.events), 0, []
    progress = True
    while progress and record.get(PARKED):
        progress = False
        waiting, record = record[PARKED], {k: v for k, v in record.items() if k != PARKED}
        for data, content in waiting:
            event = build_event(data, fill_envelope=False)
            again = _apply_one(agent, agent.handlers[event.type_name], record, event, now, content, may_wait)
            if again.verdict == "handled":
                record, progress, unparked = again.record, True, unparked + 1
                events += again.events
            elif again.verdict == "parked":
                record = again.record
            else:  # its final answer now: ignored, a duplicate, a conflict
                settled.append((event.type_name, f"{again.verdict}: {again.reason or 'after waiting'}"))
    return Applied("handled", events, record, write=True, reason=applied.reason, unparked=unparked,
                   settled=settled)


def handled_types(agent: Agent) -> frozenset[str]:
    return frozenset(agent.handlers) | frozenset(agent.forward)


__all__ = ["OUTBOX", "Agent", "Applied", "Component", "apply", "fingerprint", "labelled", "module_app", "short", "unpack"]
