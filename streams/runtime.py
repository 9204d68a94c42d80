"""The runtime a :class:`~opengym_streams.component.Component` runs on: one Faust app, Avro in and out.

- The app: id ``<prefix>`` plus the topic catalog's app id of the component (``opengym-<component>``),
  broker and prefix from :class:`~opengym_streams.settings.Settings`, the catalog's partition count, store
  ``memory://`` or ``rocksdb://`` (``OPENGYM_STORE``), web server off.
  With a ``clock`` topic, a timer on every worker publishes a ``ClockTicked`` every
  ``OPENGYM_TICK_INTERVAL`` seconds to each partition of it that the worker holds and where the tick
  would visit a state whose wake-up time has come (:meth:`Processor.tick_wanted`; the observer's clock
  ticks every partition it holds). The Faust/aiokafka tuning (:mod:`opengym_streams.tuning`) is applied
  when a worker starts, never on import.
- One ``concurrency=1`` Faust agent per declared :class:`~opengym_streams.component.Agent`, over its topics
  read as raw bytes, in batches (:func:`~opengym_streams.batching.take_batches`). Every record: decode (a record of a type the agent
  neither handles nor forwards is counted as ignored without being decoded); admit only the types its
  topic carries; check the envelope and the event's contract; then forward, handle (dedupe, pure step,
  store, publish, count) or count as ignored. Anything that fails on the way is a dead letter on the
  component's dead-letter topic, bounded in size, and the stream goes on. Registry trouble (timeouts,
  5xx) is retried with backoff off the event loop, never dead-lettered.
- In-process hops (``OPENGYM_LOCAL_HOPS``, on by default): an event a handler emits onto a topic another
  agent of the same component reads (a repartitioning hop: a seat hold keyed by class, a request keyed
  by member, and the answer back) is handed to that agent in process when this worker holds the target
  partition; otherwise it goes through Kafka. Through Kafka the repartition topic fixes the order in
  which one class's holds (or one member's requests) are decided, and a replay after a crash decides
  them again in that order; in process the order is the interleaving of the source partitions, which
  a replay does not reproduce. So a responder's changed state (an agent with ``reanswer``) is made
  durable before any output emitted after it leaves (:meth:`Processor.release_held`, once per batch):
  a replay finds every announced decision recorded and answers it again as it was
  (docs/notes/components.md).
- What makes it at-least-once: outputs go straight to the producer, each changed key's state is held
  in memory (write-behind tables), and a commit happens only at a batch boundary of every agent
  (:class:`CommitGate`): first every output sent since the last commit is confirmed by the broker, then
  the changed states go to their changelogs, then Faust flushes and commits. So no committed offset is
  ahead of the outputs or the state it caused, and a state never reaches its changelog before the
  outputs of the events that made it; after a crash everything since the last commit is handled again
  from the recovered state and re-emits the same derived event ids.

``runtime.sink`` (the coroutine writing bytes to Kafka) and ``runtime.codec`` are what agent tests replace.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import faust
from confluent_kafka.schema_registry import SchemaRegistryClient

from opengym_streams import commit_guard
from opengym_streams.batching import take_batches
from opengym_streams.checks import envelope
from opengym_streams.codec import AvroCodec, DecodeError, EncodeError
from opengym_streams.component import CLOCK_TICKED, OUTBOX, Agent, Applied, apply, fingerprint, unpack
from opengym_streams.event import Event, now_ms
from opengym_streams.models import ClockTicked, DeadLetter
from opengym_streams.security import faust_broker_kwargs, registry_client_config, registry_refusal
from opengym_streams.monitoring import metrics
from opengym_streams.monitoring.lag import record_consumer_lag
from opengym_streams.tables import StateTable, make_table, partition_of
from opengym_streams.topic import Topic

if TYPE_CHECKING:
    from opengym_streams.component import Component

APP_VERSION = 1
"""Faust app version. Changing it resets the internal topics and tables: bump only deliberately."""

HANDLER_ERROR = "HANDLER_ERROR"
"""Dead-letter kind for an event that decoded and passed its checks but made the handler raise."""
DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"
"""Dead-letter kind for an event id seen before with other content (never processed again)."""
OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
"""Dead-letter kind for an event whose handler produced a record larger than the producer may send."""

REGISTRY_TIMEOUT_S = 10
"""The registry client's HTTP timeout. Its default is none at all: one hung request blocked a
worker's event loop (agents and timer) for good."""

LAG_INTERVAL_S = 5.0
"""How often each worker exports its consumer lag (opengym_consumer_lag_messages)."""

KEY_LIMIT = 1024
"""How much of a bad record's key a dead letter keeps."""

Sink = Callable[[str, bytes, Any, "int | None"], Awaitable[None]]

log = logging.getLogger("opengym.app")


class OutputTooLarge(Exception):
    pass


class DeliveryFailed(RuntimeError):
    """An output the broker did not take: nothing is committed, the worker stops, its inputs are read again."""


def _unwrapped(wake):
    """The wake-up function over stored records (state plus its dedupe memory)."""
    def wake_record(record: dict) -> int | None:
        if OUTBOX in record:
            return 0  # decided before a crash, perhaps never announced: the next tick announces it
        state = unpack(record)[0]
        return wake(state) if state is not None else None
    return wake_record


class _Counters:
    """Prometheus children looked up once per label set (``labels()`` is a lock and a dict per call)."""

    def __init__(self) -> None:
        self._children: dict[tuple, Any] = {}

    def __call__(self, metric, *labels: str):
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


class CommitGate:
    """Commits happen only between batches: every agent's batch is its own unit of work."""

    def __init__(self) -> None:
        self._busy = 0
        self._committing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._open = asyncio.Event()
        self._open.set()

    @contextlib.asynccontextmanager
    async def batch(self):
        await self._open.wait()
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    @property
    def quiet(self) -> bool:
        """No batch runs and none waits for a commit to end."""
        return self._busy == 0 and self._open.is_set()

    @contextlib.asynccontextmanager
    async def closed(self):
        """No batch runs inside: new ones wait, running ones are waited for."""
        self._open.clear()
        try:
            await self._idle.wait()
            yield
        finally:
            self._open.set()


def make_app(component: "Component") -> faust.App:
    settings = component.settings
    app_id = settings.topic_prefix + component.topics.app_id(component.name)
    datadir = Path(settings.home) / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    port = component.metrics_port
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap}",
        store=settings.store_url,
        topic_partitions=component.topics.partitions,
        topic_replication_factor=1,
        version=APP_VERSION,
        autodiscover=False,
        web_enabled=False,
        # Plain `faust worker` turns the web server back on (--with-web is its default); a port of
        # its own per component (its metrics port minus 3000) keeps workers off Faust's 6066.
        web_port=port - 3000 if port else 6066,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes + 64 * 1024,
        # Faust's default linger is 0: every event its own produce request. 5 ms batches them; on the
        # 2-core benchmark machine that took broker and worker CPU down and throughput up by about 20%
        # (docs/performance.md).
        producer_linger=settings.producer_linger_ms / 1000.0,
        broker_commit_interval=settings.commit_interval,
        # A SIGKILLed worker holds its partitions until its session expires; Faust's 60 s default
        # stalled a restarted worker for a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # A static member (KIP-345) that restarts takes its assignment back when it rejoins, instead of
        # waiting out its dead predecessor's session (docs/notes/components.md, "Recovery time").
        consumer_group_instance_id=f"{app_id}-{settings.instance_id}" if settings.instance_id else None,
        # Standby copies cost every worker a second consumer of other workers' changelogs; with one
        # worker per component (the demo, the benchmark) there is nobody to keep them. Run two or more
        # workers of a component in production? Set OPENGYM_STANDBY_REPLICAS=1 (docs/deployment.md).
        table_standby_replicas=settings.standby_replicas,
        **faust_broker_kwargs(component.name),  # SASL/TLS from the environment; nothing when the broker is open
    )


class Processor:
    """What a component does with a decoded record, with no Faust in it: admission, dispatch, dedupe,
    publishing, in-process hops, dead letters, counting. :class:`Runtime` runs it in a Faust app; the
    test harness (:mod:`opengym_streams.testing`) runs the very same code over dict tables and a
    recording sink."""

    def __init__(self, component: "Component", local_hops: bool | None = None):
        self.component = component
        self.name = component.name
        self.settings = component.settings
        self.topics = component.topics
        self.clock = component.clock
        self.prefix = self.settings.topic_prefix
        self.count = _Counters()
        self._mispartitioned_seen = False
        self._ignored_seen: set[tuple[str, str]] = set()
        self._by_runtime_name: dict[str, Topic] = {}
        self._names: dict[str, str] = {}
        self.dead_letter_topic = self.topics.dead_letters[self.name]
        self.sink: Sink = self._no_sink
        self.tables: dict[str, Any] = {}
        self._readers: dict[str, list[Agent]] = {}
        """Contract name of a topic -> the agents of this component that read it (for in-process hops)."""
        self._hops: collections.deque = collections.deque()
        self._progress: dict[str, Any] = {}
        """Agent name -> its :class:`~opengym_streams.progress.Progress`, for agents that handle ticks."""
        self._hopping = False
        for agent in component.agents:
            for topic in agent.reads:
                self._by_runtime_name[self.name_of(topic)] = topic
                if (self.settings.local_hops if local_hops is None else local_hops):
                    self._readers.setdefault(topic.name, []).append(agent)
        self._undurable: dict[str, set[str]] = {}
        """Table -> keys a responder changed since they were last made durable."""
        self._held: list[tuple[Event, Any, int | None]] = []
        """Outputs waiting for those states, in the order they were emitted."""
        self._releasing = False

    async def _no_sink(self, name: str, key: bytes, value: Any, partition: int | None) -> None:
        raise RuntimeError(f"{self.name}: no sink to publish to")

    def name_of(self, topic: Topic) -> str:
        """The topic's runtime name (this runtime's prefix before its contract name)."""
        found = self._names.get(topic.name)
        if found is None:
            found = self._names[topic.name] = self.prefix + topic.name
        return found

    def now(self) -> int:
        return now_ms()

    def generation(self) -> int:
        """The consumer generation (a new one means a rebalance: due indexes are rebuilt)."""
        return 0

    def owns(self, topic: Topic, partition: int) -> bool:
        """Whether this worker holds ``partition`` of ``topic`` (and so the state keyed to it) right now."""
        return False

    # ---- consuming ------------------------------------------------------------------------------

    def topic_of(self, message) -> Topic:
        found = self._by_runtime_name.get(message.topic)
        if found is None:
            found = self.topics.lookup(message.topic)
            self._by_runtime_name[message.topic] = found
        return found

    def admit(self, topic: Topic, event: Event, message) -> str | None:
        """Why this record may not enter here (its topic, its envelope, its contract), or None."""
        kind = event.type_name
        if kind not in topic.short_names:
            return (f"{kind} does not belong on {topic.name} (it carries "
                    f"{', '.join(sorted(topic.short_names))})")
        timestamp = message.timestamp
        timestamp_ms = int(timestamp * 1000) if timestamp else None
        reason = envelope(event, message.key, topic.key, timestamp_ms, max_skew_ms=self.settings.max_clock_skew_ms,
                          max_age_ms=self.settings.max_event_age_ms)
        if reason is None:
            check = self.topics.check_for(kind)
            reason = check(event) if check is not None else None
        if reason is None:
            self._notice_partitioning(message, topic, kind)
        return reason

    async def process(self, agent: Agent, table, message, event: Event, started: float | None = None) -> None:
        """A decoded record: admit it, then tick, forward, handle or ignore it; then the in-process hops
        it caused, in the order they were emitted (after all of its own outputs, as through Kafka)."""
        await self._process(agent, table, message, event, started)
        if self._hops and not self._hopping:
            self._hopping = True
            try:
                while self._hops:
                    await self._process(*self._hops.popleft())
            finally:
                self._hops.clear()
                self._hopping = False

    async def _process(self, agent: Agent, table, message, event: Event, started: float | None = None) -> None:
        started = time.perf_counter() if started is None else started
        topic = self.topic_of(message)
        if agent.observe is not None:
            agent.observe(message, event)
        reason = self.admit(topic, event, message)
        if reason is not None:
            await self.dead_letter(message, DecodeError.CONTRACT_VIOLATION, f"{event.type_name}: {reason}", event)
            return
        kind = event.type_name
        self.count(metrics.EVENTS_IN, self.name, kind).inc()
        progress = self._progress.get(agent.name)
        if progress is not None and message.offset >= 0:
            progress.handled(message, event.occurred_at)
        try:
            if kind == CLOCK_TICKED:
                await self._tick(agent, table, event, message)
            elif kind in agent.forward:
                await self.forward(message, event, agent.forward[kind])
            elif kind not in agent.handlers:
                self.ignored(kind, f"not handled by {agent.name}")
                return
            else:
                now = agent.now() if agent.now is not None else self.now()
                await self._step(agent, table, message.key.decode(), event, now, fingerprint(event), message)
        except OutputTooLarge as exc:
            await self.dead_letter(message, OUTPUT_TOO_LARGE, f"{kind}: {exc}", event)
            return
        except DeliveryFailed:
            raise
        except Exception as exc:  # a poison event must not stop the partition; it is dead-lettered
            log.exception("%s: handling %s failed", self.name, kind)
            await self.dead_letter(message, HANDLER_ERROR, f"{kind}: {type(exc).__name__}: {exc}", event)
            return
        self.count(metrics.HANDLER_SECONDS, self.name, kind).observe(time.perf_counter() - started)

    async def _tick(self, agent: Agent, table, tick: ClockTicked, message) -> None:
        if tick.component != self.name:
            self.ignored(CLOCK_TICKED, "another component's clock")
            return
        self.count(metrics.TICKS, self.name).inc()
        handler = agent.handlers.get(CLOCK_TICKED)
        if handler is None or table is None:
            self.ignored(CLOCK_TICKED, f"not handled by {agent.name}")
            return
        if agent.tick_time is not None:
            now = agent.tick_time(message.partition, tick.now)
        elif agent.name in self._progress:
            # Nothing past what is still unread, and a deadline only once a reply dated before it has had
            # time to arrive: a replay after a crash then decides as the first run did.
            now = self._progress[agent.name].judge_until(tick.now) - self.settings.deadline_grace_ms
        else:
            now = tick.now
        decided = []
        for key in self.due(table, message.partition, now):
            # Each due state gets the tick addressed to its key: what it emits correlates with it.
            addressed = tick.model_copy(update={"correlation_id": key})
            record = await self._recovered(agent, table, key)
            applied = apply(agent, handler, record, addressed, now, None)
            if agent.dedupe and applied.verdict == "handled" and applied.events and applied.record is not None:
                decided.append((key, applied))
            else:
                await self.settle(agent, table, key, addressed, applied, message)
        if decided:
            await self.settle_decisions(agent, table, decided)

    async def settle_decisions(self, agent: Agent, table, decided: list[tuple[str, Applied]]) -> None:
        """What a tick decided is written down before it is announced.

        A tick decides on an absence (no reply by the deadline). A replay after a crash reads the inputs
        again in another interleaving, and the reply that was still in flight when the first run gave up
        may now come before the tick: the replay would confirm what the first run rejected, and both
        terminal events would be out. So the decided state goes to its changelog, with the events it
        announces (its outbox), and the broker confirms it before any of those events is sent; the outbox
        is cleared once they are out (that state reaches the changelog at the next commit, after the
        broker confirmed them). Recovered with an outbox, a state announces it again (same event ids)
        before anything else happens to it (:meth:`_recovered`). Everything already emitted is confirmed
        first: the durable state also remembers the events handled before it in this batch."""
        prepared = []
        for key, applied in decided:
            prepared.append((key, applied, [(out, await self._prepare(out)) for out in applied.events]))
        for key, applied, _ in prepared:
            table[key] = {**applied.record, OUTBOX: [out.to_json_dict() for out in applied.events]}
        await self.persist_now(table, [key for key, _, _ in prepared])
        # Announced at once, never held behind a responder's state (release_held): the outbox is cleared
        # right after, and a cleared record made durable before its events left would lose them.
        await self.release_held()
        for key, applied, outputs in prepared:
            await self._announce(agent, outputs, hold=False)
            table[key] = applied.record
        self.count(metrics.DECISIONS_PERSISTED, self.name, agent.name).inc(len(prepared))

    async def persist_now(self, table, keys: list[str], settled: bool = False) -> None:
        """Make the current records of ``keys`` durable before going on (the pure tier's dict tables are).
        ``settled``: what is written is the state to keep, so the commit need not send it again unless
        it changes first."""

    async def _recovered(self, agent: Agent, table, key: str) -> dict | None:
        """The key's record, after announcing what it decided before a crash and may never have sent."""
        record = table.get(key) if table is not None else None
        if record is None or not agent.dedupe or OUTBOX not in record:
            return record
        from opengym_streams.codec import build_event

        outputs = [(out, await self._prepare(out)) for out in
                   (build_event(data, fill_envelope=False) for data in record[OUTBOX])]
        log.info("%s: %s announces again the %d event(s) it decided on a tick before a restart",
                 self.name, key, len(outputs))
        await self.release_held()
        await self._announce(agent, outputs, count=False, hold=False)  # see settle_decisions
        cleared = {k: v for k, v in record.items() if k != OUTBOX}
        table[key] = cleared
        return cleared

    async def _step(self, agent: Agent, table, key: str, event: Event, now: int, content: str | None,
                    message) -> None:
        handler = agent.handlers[event.type_name]
        progress = self._progress.get(agent.name)

        def may_wait() -> bool:  # asked only when a handler says "not yet"
            return (progress is not None and progress.replaying()
                    and progress.judge_until(event.occurred_at) < event.occurred_at)

        applied = apply(agent, handler, await self._recovered(agent, table, key), event, now, content, may_wait)
        await self.settle(agent, table, key, event, applied, message)

    async def settle(self, agent: Agent, table, key: str, event: Event, applied: Applied, message) -> None:
        if applied.verdict == "duplicate":
            self.count(metrics.DUPLICATES, self.name, event.type_name).inc()
            if not applied.events:
                return
        elif applied.verdict == "conflict":
            await self.dead_letter(message, DUPLICATE_CONFLICT, f"{event.type_name}: {applied.reason}", event)
            return
        elif applied.verdict == "ignored":
            self.ignored(event.type_name, applied.reason or "ignored")
            return
        elif applied.verdict == "parked":
            self.count(metrics.PARKED, self.name, event.type_name).inc()
            self.ignored(event.type_name, f"parked until its state arrives: {applied.reason}")
            table[key] = applied.record
            return
        for kind, reason in applied.settled:
            self.ignored(kind, reason)
        if applied.unparked:
            self.count(metrics.UNPARKED, self.name, event.type_name).inc(applied.unparked)
        # Every output is encoded and size-checked before anything changes; then the state is stored
        # (with no await in between, so no other event of this worker sees half of it) and the outputs
        # go out. Nothing of it is durable before the next commit, which comes after all of it.
        outputs = [(out, await self._prepare(out)) for out in applied.events]
        if applied.write and table is not None:
            if applied.record is None:
                if key in table:
                    del table[key]
            else:
                table[key] = applied.record
            if agent.reanswer and self._readers:  # in-process hops: see release_held
                self._undurable.setdefault(agent.table, set()).add(key)
        await self._announce(agent, outputs)

    async def _announce(self, agent: Agent, outputs: list, count: bool = True, hold: bool = True) -> None:
        for out, prepared in outputs:
            await self._emit(out, prepared, hold=hold)
            label = agent.outcome_of(out) if count else None
            if label is not None:
                self.count(metrics.OUTCOMES, self.name, label).inc()

    def due(self, table, partition: int, now: int) -> list[str]:
        """Keys of ``table`` on ``partition`` whose state's wake-up time has come, checked on the state as
        it is now (a state changed behind the index, or gone, is re-indexed, not visited)."""
        index = table.due_index
        index.refresh(self.generation(), table)
        found = []
        for key in index.due(partition, now):
            index.put(key, table.get(key))
            wake = index.wakes.get(partition, {}).get(key)
            if wake is not None and wake <= now:
                found.append(key)
        return found

    def tick_wanted(self, partition: int, now: int) -> bool:
        """Whether a clock tick on ``partition`` at ``now`` may change anything here: some agent reading
        the clock topic judges time itself (the observer's clock), or has a state on that partition whose
        wake-up time has come, or its due index was not rebuilt since the last rebalance (only a tick
        rebuilds it: the table may still be recovering now). A tick that visits nothing is not sent, so
        an idle component publishes, reads and commits no ticks."""
        for agent in self._tickers:
            table = self.tables.get(agent.table)
            index = getattr(table, "due_index", None)
            if agent.tick_time is not None or index is None or index.generation != self.generation():
                return True
            wakes = index.wakes.get(partition)
            if wakes and min(wakes.values()) <= now:
                return True
        return False

    @functools.cached_property
    def _tickers(self) -> tuple[Agent, ...]:
        """The agents a tick of this component's clock reaches that do something with it."""
        clock = self.component.clock
        if clock is None:
            return ()
        return tuple(agent for agent in self.component.agents
                     if clock in agent.reads and agent.table is not None
                     and (CLOCK_TICKED in agent.handlers or agent.tick_time is not None))

    def ignored(self, event_type: str, reason: str) -> None:
        self.count(metrics.IGNORED, self.name, event_type, reason).inc()
        if (event_type, reason) not in self._ignored_seen:
            self._ignored_seen.add((event_type, reason))
            log.info("%s: ignoring %s: %s (counted in opengym_ignored_total; logged once)", self.name,
                     event_type, reason)

    def _notice_partitioning(self, message, topic: Topic, kind: str) -> None:
        # Co-partitioning needs every producer to use the murmur2 partitioner (Java's and aiokafka's
        # default). librdkafka's default is CRC32: say so once, loudly, instead of failing subtly.
        if self._mispartitioned_seen or kind == CLOCK_TICKED or message.offset < 0:
            return
        key = message.key.decode()
        if partition_of(key, topic.partitions) != message.partition:
            self._mispartitioned_seen = True
            log.warning("%s: %s key %r arrived on partition %s of %s, murmur2 says %s; producers must use "
                        "partitioner=murmur2_random (see docs/notes/components.md)", self.name, kind,
                        key, message.partition, message.topic, partition_of(key, topic.partitions))

    # ---- producing ------------------------------------------------------------------------------

    async def _prepare(self, event: Event, topic: Topic | None = None) -> tuple[Topic, str, bytes, Any]:
        topic = topic or self.topics.home(event.avro_name, self.name)
        name, key, value = await self.encode(event, topic)
        return topic, name, key, value

    async def _emit(self, event: Event, prepared, partition: int | None = None, hold: bool = True) -> None:
        """Send a prepared output, or hand it to the agent of this component that reads its topic when
        this worker holds that partition (the hop then costs no Kafka record)."""
        topic, name, key, value = prepared
        readers = self._readers.get(topic.name)
        if readers is not None and partition is None:
            target = partition_of(key.decode(), topic.partitions)
            if self.owns(topic, target):
                self.count(metrics.LOCAL_HOPS, self.name, event.type_name).inc()
                message = SimpleNamespace(topic=name, partition=target, offset=-1, key=key,
                                          value=self.local_value(event, value), timestamp=event.occurred_at / 1000.0)
                for agent in readers:
                    self._hops.append((agent, self.tables.get(agent.table) if agent.table else None, message, event))
                return
        if hold and (self._undurable or self._held or self._releasing):
            self._held.append((event, prepared, partition))
            return
        await self.sink(name, key, value, partition)
        self.count(metrics.EVENTS_OUT, self.name, event.type_name).inc()

    async def release_held(self) -> None:
        """At the end of a batch: make every state a responder changed durable, then send the outputs
        held for it, in order.

        With in-process hops, one responder's state (a class's seats, a member's credits) is changed by
        requests from several input partitions, in whatever interleaving the batches had; a replay after
        a crash interleaves them differently and could decide otherwise than answers already out. Its
        state is therefore on its changelog, confirmed, before any output emitted after the change
        leaves (one round trip per batch); a replay then finds every announced decision recorded and
        answers it again as it was (``reanswer``). Through Kafka the request topic fixes that order, and
        nothing is held."""
        if self._releasing:
            return  # another agent's batch end is releasing: it goes on until nothing is held
        self._releasing = True
        try:
            while self._undurable or self._held:
                undurable, self._undurable = self._undurable, {}
                count = len(self._held)
                for name, keys in undurable.items():
                    await self.persist_now(self.tables[name], sorted(keys), settled=True)
                    self.count(metrics.STATES_MADE_DURABLE, self.name, name).inc(len(keys))
                ready, self._held = self._held[:count], self._held[count:]
                for event, (topic, name, key, value), partition in ready:
                    await self.sink(name, key, value, partition)
                    self.count(metrics.EVENTS_OUT, self.name, event.type_name).inc()
        finally:
            self._releasing = False

    def local_value(self, event: Event, value: Any) -> bytes:
        """The bytes an in-process hop carries (for dedupe's fingerprint and a dead letter's payload)."""
        return b"\0\0\0\0\0" + json.dumps(event.to_json_dict(), sort_keys=True).encode()

    async def publish(self, event: Event, topic: Topic | None = None, partition: int | None = None) -> None:
        await self._emit(event, await self._prepare(event, topic), partition)

    async def forward(self, message, event: Event, topic: Topic) -> None:
        """The record, unchanged, onto ``topic``, re-keyed by its key field (a repartitioning step)."""
        key = str(getattr(event, topic.key)).encode()
        await self._emit(event, (topic, self.name_of(topic), key, self.forwarded(message, event)))

    def forwarded(self, message, event: Event) -> Any:
        return event

    async def dead_letter(self, message, kind: str, reason: str, event: Event | None = None) -> None:
        """Send a bounded copy of ``message`` to the dead-letter topic; if even that fails, skip it loudly."""
        key, value = message.key, message.value
        limit = self.settings.dead_letter_payload_bytes
        correlation = event.correlation_id if event is not None else (
            key[:200].decode(errors="replace") if key else f"{message.topic}/{message.partition}/{message.offset}")
        where = (f"{message.topic}/{message.partition}/{message.offset}" if message.offset >= 0 or event is None
                 else f"{message.topic}/{event.event_id}")
        try:
            letter = DeadLetter.new(
                correlation_id=correlation[:200] or "(empty)",
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dlq/{self.name}/{where}")),
                component=self.name, source_topic=str(message.topic), source_partition=int(message.partition),
                source_offset=int(message.offset), error_kind=kind, reason=reason[:2000],
                key=key[:KEY_LIMIT] if key is not None else None,
                payload=value[:limit] if value is not None else None,
                payload_size=len(value) if value is not None else None,
                payload_sha256=hashlib.sha256(value).hexdigest() if value is not None else None,
                payload_truncated=value is not None and len(value) > limit,
            )
            log.warning("%s: dead letter from %s[%s]@%s: %s: %s", self.name, message.topic,
                        message.partition, message.offset, kind, reason[:500])
            prepared = await self._prepare(letter, self.dead_letter_topic)
            await self.sink(prepared[1], prepared[2], prepared[3], None)
            self.count(metrics.EVENTS_OUT, self.name, letter.type_name).inc()
            self.count(metrics.DEAD_LETTERS, self.name, kind).inc()
        except Exception:  # nothing may stop the partition: the record is skipped, counted and alerted on
            log.critical("%s: could not even dead-letter %s[%s]@%s (%s: %s); SKIPPED (original left on its topic)",
                         self.name, message.topic, message.partition, message.offset, kind, reason[:500],
                         exc_info=True)
            self.count(metrics.SKIPPED, self.name, kind).inc()

    async def encode(self, event: Event, topic: Topic) -> tuple[str, bytes, Any]:
        """(topic name, key, value) of an event on ``topic``; the runtime encodes to Avro."""
        key = str(getattr(event, topic.key, None) or event.correlation_id)
        return self.name_of(topic), key.encode(), event


class Runtime(Processor):
    """One component's Faust app around its :class:`Processor`: codec, tables, agents, timers, metrics."""

    def __init__(self, component: "Component"):
        super().__init__(component)
        self.app = make_app(component)
        self.app.opengym_runtime = self  # the commit hook (streams.tuning) finds the gate and the outputs here
        self._codec: AvroCodec | None = None
        self._faust_topics: dict[str, Any] = {}
        self.sink = self._send_to_kafka
        self.gate = CommitGate()
        self.pending: list[asyncio.Future] = []
        """Outputs sent since the last commit, until the broker confirms them."""
        self.agents: dict[str, Any] = {}
        """Faust agent per declared agent name (for ``test_context()``)."""
        self._owned: set[tuple[str, int]] | None = None
        """(topic, partition) this worker holds, read from the consumer once per assignment."""
        self.broken: BaseException | None = None
        """Set when an output was not delivered: from then on nothing is committed."""
        self.app.on_worker_init.connect(self._on_worker_init)
        self.app.on_partitions_revoked.connect(self._assignment_changed)
        self.app.on_partitions_assigned.connect(self._assignment_changed)
        self.app.task(self._on_worker_start)
        self.app.timer(LAG_INTERVAL_S, name=f"{self.name}.lag")(self._record_lag)
        self.app.timer(commit_guard.CHECK_EVERY_S, name=f"{self.name}.unreached")(self._redeliver_unreached)
        if self.clock is not None:
            self.app.timer(self.settings.tick_interval, name=f"{self.name}.clock")(self._publish_ticks)
        for interval, fn in component.timers:
            self.app.timer(interval, name=f"{self.name}.{fn.__name__}")(self._guarded(fn))
        for agent in component.agents:
            self._wire(agent)
        for hook in component.on_app:
            hook(self)

    # ---- wiring ---------------------------------------------------------------------------------

    @property
    def codec(self) -> AvroCodec:
        if self._codec is None:
            from opengym_streams.contracts import load_contracts

            registry = SchemaRegistryClient(registry_client_config(self.settings.registry_url, timeout=REGISTRY_TIMEOUT_S))
            self._codec = AvroCodec(registry=registry, contracts=load_contracts(self.component.system))
        return self._codec

    @codec.setter
    def codec(self, codec: AvroCodec) -> None:
        self._codec = codec

    def _wire(self, agent: Agent) -> None:
        names = [self.name_of(topic) for topic in agent.reads]
        table = None
        if agent.table is not None:
            wake = agent.wake
            if wake is not None and agent.dedupe:
                wake = _unwrapped(wake)
            table = make_table(self.app, agent.table, partitions=self.topics.partitions, wake=wake)
            self.tables[agent.table] = table
        if agent.tick_time is None and (CLOCK_TICKED in agent.handlers or (table is not None and agent.dedupe)):
            from opengym_streams.progress import Progress, faust_consumer_view

            inputs = frozenset(names)
            self._progress[agent.name] = Progress(faust_consumer_view(self.component, lambda: inputs))
        channel = self.app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                                 value_serializer="raw")
        batch, within = self.settings.batch_max, self.settings.batch_within_ms / 1000.0

        async def consume(stream):
            async for events in take_batches(stream, batch, within):
                async with self.gate.batch():
                    for record in events:
                        await self.handle(agent, table, record.message)
                    await self.release_held()
                self.count(metrics.LAST_EVENT_TIMESTAMP, self.name).set(time.time())
                # Yielding marks the batch processed, which agent.test_context().put() waits for.
                yield len(events)

        consume.__name__ = consume.__qualname__ = agent.name
        self.agents[agent.name] = self.app.agent(channel, name=f"{self.name}.{agent.name}", concurrency=1)(consume)

    async def _redeliver_unreached(self) -> None:
        """A message the fetcher handed out that never reached an agent is read again (streams.commit_guard)."""
        commit_guard.redeliver_unreached(self.app.consumer, busy=not self.gate.quiet)

    def _on_worker_init(self, app: Any = None, **kwargs: Any) -> None:
        from opengym_streams import tuning

        tuning.apply(self.settings)

    async def _on_worker_start(self) -> None:
        port = metrics.serve(self.name, self._metrics_port(), self.component.catalog, self.settings.metrics_addr)
        log.info("%s worker started (app %s, metrics on %s)", self.name, self.app.conf.id,
                 port if port else "no port")
        await self._registry_call(self._register_outputs, refusal_is_fatal=True)

    def _metrics_port(self) -> int:
        if self.settings.metrics_port is not None:
            return self.settings.metrics_port
        return self.component.metrics_port or 0

    def _register_outputs(self) -> int:
        """Register every (topic, record) this component writes, off the event loop, before traffic."""
        count = 0
        for topic in self.topics.written_by(self.name):
            for avro_name in topic.events:
                if topic.kind == "commands" and not (topic is self.clock and avro_name.endswith(CLOCK_TICKED)):
                    continue
                self.codec.schema_id(self.name_of(topic), self.codec.contracts.get(avro_name))
                count += 1
        return count

    async def _registry_call(self, fn: Callable, *args: Any, refusal_is_fatal: bool = False) -> Any:
        """Run a codec call in a thread; registry trouble (not bad data) is retried, never dead-lettered.
        With ``refusal_is_fatal`` (at start-up) wrong registry credentials stop the worker instead."""
        delay = 0.2
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except (DecodeError, EncodeError):
                raise
            except Exception as exc:  # registry down or slow: wait for it, the data is not at fault
                refused = registry_refusal(exc) if refusal_is_fatal else None
                if refused is not None:
                    raise refused from None
                log.warning("%s: schema registry call failed (%s: %s); retrying in %.1fs", self.name,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def generation(self) -> int:
        return self.app.consumer_generation_id

    def owns(self, topic: Topic, partition: int) -> bool:
        owned = self._owned
        if owned is None:
            consumer = getattr(self.app, "_consumer", None)
            try:
                owned = {(tp.topic, tp.partition) for tp in consumer.assignment()} if consumer is not None else set()
            except Exception:  # not started (agent tests), or between assignments
                return False
            self._owned = owned
        return (self.name_of(topic), partition) in owned

    async def _assignment_changed(self, *args: Any, **kwargs: Any) -> None:
        self._owned = None

    # ---- the commit ------------------------------------------------------------------------------

    async def before_commit(self) -> None:
        """Called by the patched commit (:mod:`opengym_streams.tuning`) before Faust commits offsets. With
        no batch running: wait until the broker has every output sent since the last commit, then send
        every changed key's state to its changelog and wait for that too. Anything not delivered stops
        all commits for good (the worker is crashed; its inputs will be read again)."""
        if self.broken is not None:
            raise DeliveryFailed(f"{self.name}: an earlier output was not delivered") from self.broken
        async with self.gate.closed():
            pending, self.pending = self.pending, []
            await self._confirm(pending, "output")
            await self._confirm(await self._send_table_changes(), "changelog record")

    async def persist_now(self, table, keys: list[str], settled: bool = False) -> None:
        """Every output sent so far confirmed, then the records of ``keys`` on their changelog, confirmed
        (Faust's recovery reads them back). The keys stay dirty, so their later state follows at the
        commit, unless ``settled``: then a key is sent again only if it changes after this."""
        if self.sink != self._send_to_kafka:
            return  # agent tests: nothing runs against a broker
        await self._confirm(list(self.pending), "output")
        name = table.changelog_name()
        futures = []
        for key in keys:
            key_bytes, data = table.encode_change(key, table.get(key))
            if settled:
                table.written(key)  # a change from here on marks it dirty again
            future = await self._produce(name, key_bytes, data, table.partition_for_key(key))
            future.add_done_callback(table.on_changelog_delivered)
            futures.append(future)
        self.count(metrics.CHANGELOG_RECORDS, self.name).inc(len(futures))
        await self._confirm(futures, "changelog record")

    async def _send_table_changes(self) -> list[asyncio.Future]:
        futures = []
        for table in self.tables.values():
            changes = table.changes()
            if not changes:
                continue
            name = table.changelog_name()
            for partition, key, value in changes:
                key_bytes, data = table.encode_change(key, value)
                future = await self._produce(name, key_bytes, data, partition)
                future.add_done_callback(table.on_changelog_delivered)
                futures.append(future)
        if futures:
            self.count(metrics.CHANGELOG_RECORDS, self.name).inc(len(futures))
        return futures

    async def _confirm(self, futures: list[asyncio.Future], what: str) -> None:
        if not futures:
            return
        results = await asyncio.gather(*futures, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            self.broken = failed[0]
            log.critical("%s: %d %s(s) not delivered (%s: %s); nothing more is committed, the worker stops "
                         "and its inputs since the last commit will be read again", self.name, len(failed), what,
                         type(failed[0]).__name__, failed[0])
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.app.crash(failed[0])))
            raise DeliveryFailed(f"{len(failed)} {what}(s) not delivered: {failed[0]!r}")

    # ---- Kafka ----------------------------------------------------------------------------------

    async def decode(self, value: bytes | None) -> Event:
        if self.codec.can_decode_offline(value):
            return self.codec.decode(value)
        return await self._registry_call(self.codec.decode, value)

    async def handle(self, agent: Agent, table, message) -> None:
        """Everything one record goes through (see the module docstring)."""
        started = time.perf_counter()
        skipped = self._type_nobody_here_reads(agent, message)
        progress = self._progress.get(agent.name)
        if progress is not None and skipped is not None:
            progress.handled(message, None)  # read: a tick may judge past it
        if skipped is not None:
            self.count(metrics.EVENTS_IN, self.name, skipped).inc()
            self.ignored(skipped, f"not handled by {agent.name}")
            if agent.observe is not None:
                agent.observe(message, None)
            return
        try:
            event = await self.decode(message.value)
        except DecodeError as exc:
            if agent.observe is not None:
                agent.observe(message, None)
            if progress is not None:
                progress.handled(message, None)
            await self.dead_letter(message, exc.kind, exc.reason)
            return
        await self.process(agent, table, message, event, started)

    def _type_nobody_here_reads(self, agent: Agent, message) -> str | None:
        """The record's type when the agent neither handles nor forwards it (known from its schema id
        alone, without decoding), else None."""
        if agent.observe is not None:
            return None  # an observer notes every record it reads
        name = self.codec.record_name(message.value)
        if name is None or name in agent.handlers or name in agent.forward or name == CLOCK_TICKED:
            return None
        if name not in self.topic_of(message).short_names:
            return None  # decoded, so that it is dead-lettered as not belonging here
        return name

    async def encode(self, event: Event, topic: Topic) -> tuple[str, bytes, bytes]:
        """(topic name, key, value) of an event on ``topic``, size-checked."""
        name = self.name_of(topic)
        key = str(getattr(event, topic.key, None) or event.correlation_id)
        try:
            if self.codec.can_encode_offline(name, event.avro_name):
                value = self.codec.encode(event, name)
            else:
                value = await self._registry_call(self.codec.encode, event, name)
        except EncodeError:
            log.exception("%s: cannot encode %s", self.name, event.type_name)
            raise
        if len(value) + len(key) > self.settings.max_message_bytes:
            raise OutputTooLarge(f"{event.type_name} for {name} encodes to {len(value)} bytes; the limit is "
                                 f"{self.settings.max_message_bytes} (OPENGYM_MAX_MESSAGE_BYTES)")
        return name, key.encode(), value

    def forwarded(self, message, event: Event) -> bytes:
        return message.value  # the same bytes: nothing is re-encoded on the way

    async def _send_to_kafka(self, name: str, key: bytes, value: bytes, partition: int | None) -> None:
        # Straight to the producer (not Faust's buffer); before a commit the broker must confirm it.
        self.pending.append(await self._produce(name, key, value, partition))

    async def _produce(self, name: str, key: bytes, value: bytes | None, partition: int | None) -> asyncio.Future:
        """Hand a record to the producer; the future is done when the broker has it."""
        return await self.app.producer.send(name, key, value, partition, None, None)

    # ---- timers ---------------------------------------------------------------------------------

    def _guarded(self, fn: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
        async def timer() -> None:
            try:
                result = fn()
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # an exception in a Faust timer crashes the whole worker
                log.exception("%s: timer %s failed", self.name, getattr(fn, "__name__", fn))
        timer.__name__ = getattr(fn, "__name__", "timer")
        return timer

    async def _record_lag(self) -> None:
        try:
            record_consumer_lag(self.app, self.name)
        except Exception:  # a metric must never take the worker down
            log.exception("%s: recording consumer lag failed", self.name)

    async def _publish_ticks(self) -> None:
        """Every worker ticks the partitions of the clock topic it holds, each only when the tick would
        visit something (:meth:`tick_wanted`)."""
        now = now_ms()
        try:
            for partition in range(self.clock.partitions):
                if not (self.owns(self.clock, partition) and self.tick_wanted(partition, now)):
                    continue
                tick = ClockTicked.new(correlation_id="clock", occurred_at=now, now=now, component=self.name)
                await self.publish(tick, self.clock, partition=partition)
        except Exception:  # a missed tick only delays deadlines by one interval; never crash the worker
            log.exception("%s: publishing clock ticks failed", self.name)
