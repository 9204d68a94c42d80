"""The runtime every OpenGym component runs on: one Faust app per component, Avro in and out.

A component module does this and nothing more::

    rt = Runtime("reservation", clock=topics.RESERVATION_COMMANDS)
    app = rt.app                                   # `faust -A agents.reservation worker -l info`
    bookings = rt.table("bookings")                # str key -> JSON state; changelog keyed like the topics

    @rt.agent(topics.RESERVATION_COMMANDS, accepts={"BookClassRequested": check_booking})
    async def orchestrate(event, message):         # a decoded event that passed its contract check
        await rt.step(bookings, event.correlation_id, event, logic.on_event, now=rt.now())

The API, all of it:

- ``Runtime(component, clock=None)``: the Faust app (id ``<prefix>opengym-<component>``, broker and
  prefix from settings, ``topics.PARTITIONS`` partitions, store ``memory://`` or ``rocksdict://`` when
  ``OPENGYM_STORE=rocksdict`` (Faust's rocksdb store on the rocksdict package), web server off). With ``clock=<topic>`` a leader-only timer publishes a
  ``ClockTicked`` to every partition of that topic every ``OPENGYM_TICK_INTERVAL`` seconds (default 1).
- ``rt.table(name, write_behind=False)``: a Faust table of JSON states keyed by str (write-behind:
  changelog records once per key per commit, :class:`WriteBehindTable`). Its changelog is partitioned by the
  key's murmur2 partition, exactly as the topics are, so state written while handling a tick lands
  in the changelog partition its key belongs to.
- ``@rt.agent(*topics, accepts={type name: check})``: one ``concurrency=1`` agent over those topics,
  read as raw bytes. Each message is decoded with :class:`AvroCodec`; an undecodable one, an event type
  not in ``accepts`` (``ClockTicked`` is accepted on the clock topic) or one whose ``check(event)``
  returns a reason goes to the component's dead-letter topic and the stream goes on. The handler gets
  ``(event, message)``; metrics in, latency and last-event time are counted around it.
- ``await rt.step(table, key, event, logic, **kwargs)``: dedupe by event_id (the processed ids live in
  the state record, so the dedupe is atomic with the state change), call the pure
  ``logic(state, event, **kwargs) -> (new_state, [events])``, publish the events, then store the state
  (publish first: a crash in between replays the event, which re-emits the same derived event ids).
- ``await rt.publish(event, topic=None)``: Avro-encode to the event's catalog topic (contract topics
  first, then the component's internal ones), keyed by the topic's key field (``correlation_id``
  unless the catalog says otherwise).
- ``await rt.forward(message, event, topic)``: the same bytes, re-keyed by ``topic.key``: the
  repartitioning step that moves a request to the partition that owns its state.
- ``rt.due(table, partition, now)``: the (key, state) of ``table`` that belong to ``partition`` (what a
  tick on that partition may touch); with ``rt.table(name, wake=fn)`` only those whose
  ``fn(state)`` wake-up time is at or before ``now`` (:class:`DueIndex`); ``rt.outcome(name)``: count a business outcome; ``rt.now()``.
- ``rt.sink``: the coroutine that writes bytes to Kafka; agent tests replace it with a recorder,
  and ``rt.codec`` with one on a ``mock://`` registry. ``rt.agents[handler name]`` is the Faust agent
  (for ``test_context()``), ``rt.subscriptions[handler name]`` its (topics, accepted types).

Helpers for contract checks: ``correlates_by(field)``, ``non_empty(*fields)``, ``positive(field)``,
``all_of(*checks)``; for deterministic choices: ``share_of(key, salt)``; ``partition_of(key)``.
Registry trouble (timeouts, 5xx) is retried with backoff off the event loop, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import faust
from aiokafka.partitioner import murmur2
from confluent_kafka.schema_registry import SchemaRegistryClient

import topics
from monitoring import metrics
from monitoring.lag import record_consumer_lag
from streams.codec import AvroCodec, DecodeError, EncodeError
from streams.event import Event, now_ms
from streams.models import ClockTicked, DeadLetter
from streams.settings import get_settings
from topics import Topic, topic_name

APP_VERSION = 1
"""Faust app version. Changing it resets the internal topics and tables: bump only deliberately."""

HANDLER_ERROR = "HANDLER_ERROR"
"""Dead-letter kind for an event that decoded and passed its checks but made the handler raise."""

REGISTRY_TIMEOUT_S = 10
"""The registry client's HTTP timeout. Its default is none at all: one hung request blocked a
worker's event loop (agents and timer) for good."""

LAG_INTERVAL_S = 5.0
"""How often each worker exports its consumer lag (opengym_consumer_lag_messages)."""

SEEN_LIMIT = 64
"""How many processed event ids a state record keeps for dedupe (the newest ones)."""

Check = Callable[[Event], "str | None"]
Logic = Callable[..., "tuple[dict | None, list[Event]]"]
Sink = Callable[[str, bytes, bytes, "int | None"], Awaitable[None]]

log = logging.getLogger("opengym.app")


@functools.lru_cache(maxsize=1 << 20)
def partition_of(key: str, partitions: int = topics.PARTITIONS) -> int:
    """The partition a key lands on with the Java/aiokafka default partitioner (murmur2)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def store_url() -> str:
    store = os.environ.get("OPENGYM_STORE", "memory").strip().lower()
    if store in ("", "memory"):
        return "memory://"
    if store == "rocksdict":
        return "rocksdb://"  # Faust's rocksdb store runs on the rocksdict package when python-rocksdb is absent
    raise ValueError(f"OPENGYM_STORE={store!r}: use memory or rocksdict")


def tick_interval() -> float:
    return float(os.environ.get("OPENGYM_TICK_INTERVAL", "1.0"))


def make_app(component: str) -> faust.App:
    settings = get_settings()
    app_id = f"{settings.topic_prefix}opengym-{component}"
    datadir = Path(settings.home) / "faust" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap}",
        store=store_url(),
        topic_partitions=topics.PARTITIONS,
        topic_replication_factor=1,
        version=APP_VERSION,
        autodiscover=False,
        web_enabled=False,
        # Plain `faust worker` turns the web server back on (--with-web is its default); a port of
        # its own per component (6101..6108) keeps workers of different components off Faust's 6066.
        web_port=metrics.METRIC_PORTS[component] - 3000,
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Faust's default linger is 0: every event its own produce request. 5 ms batches them; on the
        # 2-core benchmark machine that took broker and worker CPU down and throughput up by about 20%
        # (docs/performance.md).
        producer_linger=int(os.environ.get("OPENGYM_PRODUCER_LINGER_MS", "5")) / 1000.0,
        broker_commit_interval=1.0,
        # A SIGKILLed worker holds its partitions until its session expires; Faust's 60 s default
        # stalled a restarted worker for a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # Standby copies cost every worker a second consumer of other workers' changelogs; with one
        # worker per component (the demo, the benchmark) there is nobody to keep them. Run two or more
        # workers of a component in production? Set OPENGYM_STANDBY_REPLICAS=1 (docs/deployment.md).
        table_standby_replicas=env_int("OPENGYM_STANDBY_REPLICAS", 0),
    )


def remember(state: dict, event_id: str) -> dict:
    seen = [*state.get("seen", ()), event_id][-SEEN_LIMIT:]
    return {**state, "seen": seen}


def _home_topics(avro_name: str, component: str) -> Topic:
    """Contract topic first (one carrier), else this component's internal topic that carries it."""
    for candidates in (topics.CONTRACT_TOPICS, tuple(t for t in topics.INTERNAL_TOPICS if t.owner == component)):
        carriers = [t for t in candidates if avro_name in t.events]
        if len(carriers) == 1:
            return carriers[0]
    raise LookupError(f"{avro_name}: no single topic carries it; name the topic explicitly")


Wake = Callable[[dict], "int | None"]
"""The earliest time (ms) a state wants a clock tick, or None for never (a finished booking)."""


class DueIndex:
    """Per partition, the wake-up time of each state that wants one, so a tick visits only what is due.

    A table keeps every booking it ever saw (for dedupe), so scanning it on every tick costs O(history)
    per second. The index holds only the states with a wake-up time. It is rebuilt from the table
    when the consumer generation changes (after a rebalance the table holds the recovered state of the
    partitions this worker now owns, written by recovery without passing through the table's set hook)
    and kept up to date on every assignment and deletion through the table.
    """

    def __init__(self, wake: Wake):
        self.wake = wake
        self.generation: int | None = None
        self.wakes: dict[int, dict[str, int]] = {}

    def refresh(self, generation: int, table) -> None:
        if generation == self.generation:
            return
        self.wakes = {p: {} for p in range(topics.PARTITIONS)}
        for key, state in list(table.items()):
            self.put(key, state)
        self.generation = generation

    def due(self, partition: int, now: int) -> list[str]:
        return [key for key, wake in self.wakes.get(partition, {}).items() if wake <= now]

    def put(self, key: str, state: dict | None) -> None:
        wake = self.wake(state) if state is not None else None
        if wake is None:
            self.drop(key)
        else:
            self.wakes.setdefault(partition_of(key), {})[key] = wake

    def drop(self, key: str) -> None:
        self.wakes.get(partition_of(key), {}).pop(key, None)


class KeyPartitionedTable(faust.Table):
    """A table whose changelog partition is its key's murmur2 partition, whatever event changed it.

    Faust writes a change to the partition of the event being processed; a tick (published to every
    partition) or a misrouted message would then scatter one key over several changelog partitions
    and recovery could restore a stale value. Faust's own ``use_partitioner=True`` asks the producer
    for the partition, which agent tests do not start; we keep the flag (it makes the rocksdb store
    look a key up in every partition's database) and answer the partition ourselves.
    """

    due_index: DueIndex | None = None
    """Set by ``Runtime.table(name, wake=...)``; kept current by every assignment and deletion."""

    def partition_for_key(self, key: Any) -> int:
        return partition_of(key if isinstance(key, str) else key.decode())

    def on_key_set(self, key: Any, value: Any) -> None:
        self._log_set(key, value)
        if self.due_index is not None:
            self.due_index.put(key, value)

    def on_key_del(self, key: Any) -> None:
        self._log_del(key)
        if self.due_index is not None:
            self.due_index.drop(key)

    def _log_set(self, key: Any, value: Any) -> None:
        super().on_key_set(key, value)  # Faust: one changelog record now

    def _log_del(self, key: Any) -> None:
        super().on_key_del(key)


class WriteBehindTable(KeyPartitionedTable):
    """A :class:`KeyPartitionedTable` that writes each changed key to its changelog once per commit.

    Faust sends one changelog record per assignment; a transaction whose state changes five times in a
    second costs five records (and five JSON encodings, five produce appends, five records the broker
    stores and compaction later drops). Here an assignment or deletion changes the in-memory value at
    once (reads see it) and marks the key dirty; :func:`flush_table_changes` sends the latest value of
    every dirty key (a tombstone if it is gone). ``streams.tuning`` calls it at the start of every
    offset commit, before Faust flushes the producer and commits, and a rebalance commits before it
    gives partitions away, so a committed input offset never runs ahead of the state it produced; a
    crash loses only changes whose inputs were not committed, and those inputs are read again.
    The price is a wider replay window: after a crash, everything since the last commit is handled
    again from the recovered state, so outputs of that second are published again (same event ids,
    which consumers dedupe). Without it only the event being handled at the crash is replayed. The
    observer, whose only outputs are anomalies, uses it; components do not unless
    ``OPENGYM_TABLE_WRITE_BEHIND=1`` (``0`` turns it off everywhere).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._dirty: set[Any] = set()

    def _log_set(self, key: Any, value: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_set(self, key, value)

    def _log_del(self, key: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_del(self, key)

    def flush_changes(self) -> int:
        """Send the current value (or a tombstone) of every key changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            value = self.data.get(key)
            if value is None:
                self.send_changelog(self.partition_for_key(key), key, value=None, value_serializer="raw")
            else:
                self.send_changelog(self.partition_for_key(key), key, value)
        return len(dirty)


def table_write_behind(default: bool) -> bool:
    """``OPENGYM_TABLE_WRITE_BEHIND``: 1 makes every table write-behind, 0 none; unset, each table's default."""
    setting = os.environ.get("OPENGYM_TABLE_WRITE_BEHIND", "").strip()
    return default if setting == "" else setting != "0"


def flush_table_changes(app: faust.App) -> int:
    """Hand every write-behind table's pending changes to the producer; the number of records sent."""
    return sum(table.flush_changes() for table in app.tables.values() if isinstance(table, WriteBehindTable))


class Runtime:
    """One component's Faust app plus the codec, dead-lettering, dedupe, metrics and clock around it."""

    def __init__(self, component: str, *, clock: Topic | None = None):
        if component not in metrics.METRIC_PORTS:
            raise ValueError(f"unknown component {component!r}")
        self.component = component
        self.app = make_app(component)
        self.clock = clock
        self._codec: AvroCodec | None = None
        self._faust_topics: dict[str, faust.types.TopicT] = {}
        self._mispartitioned_seen = False
        self.sink: Sink = self._send_to_kafka
        self.agents: dict[str, Any] = {}
        self.subscriptions: dict[str, tuple[tuple[Topic, ...], frozenset[str]]] = {}
        self.app.task(self._on_worker_start)
        self.app.timer(LAG_INTERVAL_S, name=f"{component}.lag")(self._record_lag)
        if clock is not None:
            self.app.timer(tick_interval(), on_leader=True, name=f"{component}.clock")(self._publish_ticks)

    # ---- wiring ---------------------------------------------------------------------------------

    @property
    def codec(self) -> AvroCodec:
        if self._codec is None:
            registry = SchemaRegistryClient({"url": get_settings().registry_url, "timeout": REGISTRY_TIMEOUT_S})
            self._codec = AvroCodec(registry=registry)
        return self._codec

    @codec.setter
    def codec(self, codec: AvroCodec) -> None:
        self._codec = codec

    def table(self, name: str, *, write_behind: bool = False, wake: Wake | None = None) -> faust.Table:
        schema = faust.Schema(key_type=str, key_serializer="raw", value_serializer="json")
        kind = WriteBehindTable if table_write_behind(write_behind) else KeyPartitionedTable
        table = kind(self.app, name=name, schema=schema, partitions=topics.PARTITIONS, use_partitioner=True,
                     beacon=self.app.tables.beacon)
        if wake is not None:
            table.due_index = DueIndex(wake)
        return self.app.tables.add(table)

    def _faust_topic(self, runtime_name: str):
        found = self._faust_topics.get(runtime_name)
        if found is None:
            found = self.app.topic(runtime_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                                   value_serializer="raw")
            self._faust_topics[runtime_name] = found
        return found

    async def _on_worker_start(self) -> None:
        port = metrics.serve(self.component)
        log.info("%s worker started (app %s, metrics on %s)", self.component, self.app.conf.id,
                 port if port else "no port")
        await self._registry_call(self._register_outputs)

    def _register_outputs(self) -> int:
        """Register every (topic, record) this component writes, off the event loop, before traffic."""
        written = [t for t in topics.ALL_TOPICS if t.owner == self.component and t.kind != "commands"]
        written += [t for t in (self.clock,) if t is not None]
        count = 0
        for topic in written:
            for avro_name in topic.events:
                self.codec.schema_id(topic_name(topic), self.codec.contracts.get(avro_name))
                count += 1
        return count

    async def _registry_call(self, fn: Callable, *args: Any) -> Any:
        """Run a codec call in a thread; registry trouble (not bad data) is retried, never dead-lettered."""
        delay = 0.2
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except (DecodeError, EncodeError):
                raise
            except Exception as exc:  # registry down or slow: wait for it, the data is not at fault
                log.warning("%s: schema registry call failed (%s: %s); retrying in %.1fs", self.component,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def now(self) -> int:
        return now_ms()

    # ---- consuming ------------------------------------------------------------------------------

    def agent(self, *sources: Topic, accepts: dict[str, Check | None]):
        """Decorate ``async def handler(event, message)``: decode, check, dead-letter, then call it."""
        names = [topic_name(t) for t in sources]
        accepted = dict(accepts)
        if self.clock is not None and self.clock in sources:
            accepted.setdefault("ClockTicked", None)
        channel = self.app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                                 value_serializer="raw")

        def decorate(handler: Callable[[Event, Any], Awaitable[None]]):
            async def consume(stream):
                async for record in stream.events():
                    await self.handle(record.message, handler, accepted)
                    # Yielding marks the event processed, which agent.test_context().put() waits for.
                    yield record.message.offset

            consume.__name__ = consume.__qualname__ = handler.__name__
            self.subscriptions[handler.__name__] = (sources, frozenset(accepted))
            self.agents[handler.__name__] = self.app.agent(
                channel, name=f"{self.component}.{handler.__name__}", concurrency=1)(consume)
            return handler

        return decorate

    async def handle(self, message, handler, accepted: dict[str, Check | None]) -> None:
        started = time.perf_counter()
        try:
            if self.codec.can_decode_offline(message.value):
                event = self.codec.decode(message.value)
            else:
                event = await self._registry_call(self.codec.decode, message.value)
        except DecodeError as exc:
            await self.dead_letter(message, exc.kind, exc.reason)
            return
        kind = event.type_name
        if kind not in accepted:
            await self.dead_letter(message, DecodeError.CONTRACT_VIOLATION,
                                   f"{kind} does not belong on {message.topic} (this topic carries "
                                   f"{', '.join(sorted(accepted))})", event)
            return
        check = accepted[kind]
        reason = check(event) if check is not None else None
        if reason:
            await self.dead_letter(message, DecodeError.CONTRACT_VIOLATION, f"{kind}: {reason}", event)
            return
        self._notice_partitioning(message, kind)
        metrics.EVENTS_IN.labels(self.component, kind).inc()
        if kind == "ClockTicked":
            metrics.TICKS.labels(self.component).inc()
        try:
            await handler(event, message)
        except Exception as exc:  # a poison event must not stop the partition; it is dead-lettered
            log.exception("%s: handling %s failed", self.component, kind)
            await self.dead_letter(message, HANDLER_ERROR, f"{kind}: {type(exc).__name__}: {exc}", event)
            return
        metrics.HANDLER_SECONDS.labels(self.component, kind).observe(time.perf_counter() - started)
        metrics.LAST_EVENT_TIMESTAMP.labels(self.component).set(time.time())

    def _notice_partitioning(self, message, kind: str) -> None:
        # Co-partitioning needs every producer to use the murmur2 partitioner (Java's and aiokafka's
        # default). librdkafka's default is CRC32: say so once, loudly, instead of failing subtly.
        if self._mispartitioned_seen or message.key is None or kind == "ClockTicked":
            return
        try:
            key = message.key.decode()
        except UnicodeDecodeError:
            return
        if partition_of(key) != message.partition:
            self._mispartitioned_seen = True
            log.warning("%s: %s key %r arrived on partition %s of %s, murmur2 says %s; producers must use "
                        "partitioner=murmur2_random (see docs/notes/components.md)", self.component, kind,
                        key, message.partition, message.topic, partition_of(key))

    # ---- state ----------------------------------------------------------------------------------

    async def step(self, table, key: str, event: Event, logic: Logic, **kwargs: Any) -> list[Event]:
        state = table.get(key)
        if state is not None and event.event_id in state.get("seen", ()):
            metrics.DUPLICATES.labels(self.component, event.type_name).inc()
            return []
        new_state, emitted = logic(state, event, **kwargs)
        for out in emitted:
            await self.publish(out)
        if new_state is not None:
            table[key] = remember(new_state, event.event_id)
        return emitted

    def due(self, table, partition: int, now: int | None = None) -> list[tuple[str, dict]]:
        """(key, state) of ``table`` on ``partition`` that a tick at ``now`` may change.

        A table made with ``wake=`` answers from its :class:`DueIndex`: only the states whose wake-up
        time, taken from the state as it is now, has come (so the caller need not check again).
        Without one (or without ``now``), every key of the partition.
        """
        index = getattr(table, "due_index", None)
        if index is None or now is None:
            return [(key, state) for key, state in list(table.items()) if partition_of(key) == partition]
        index.refresh(self.app.consumer_generation_id, table)
        found = []
        for key in index.due(partition, now):
            state = table.get(key)
            index.put(key, state)  # a state changed behind the index (or gone) is re-indexed, not visited
            wake = index.wakes.get(partition, {}).get(key)
            if wake is not None and wake <= now:
                found.append((key, state))
        return found

    def outcome(self, name: str) -> None:
        metrics.OUTCOMES.labels(self.component, name).inc()

    # ---- producing ------------------------------------------------------------------------------

    async def publish(self, event: Event, topic: Topic | None = None, partition: int | None = None) -> None:
        topic = topic or _home_topics(event.avro_name, self.component)
        name = topic_name(topic)
        key = str(getattr(event, topic.key, None) or event.correlation_id)
        try:
            if self.codec.can_encode_offline(name, event.avro_name):
                value = self.codec.encode(event, name)
            else:
                value = await self._registry_call(self.codec.encode, event, name)
        except EncodeError:
            log.exception("%s: cannot encode %s", self.component, event.type_name)
            raise
        await self.sink(name, key.encode(), value, partition)
        metrics.EVENTS_OUT.labels(self.component, event.type_name).inc()

    async def forward(self, message, event: Event, topic: Topic) -> None:
        await self.sink(topic_name(topic), str(getattr(event, topic.key)).encode(), message.value, None)
        metrics.EVENTS_OUT.labels(self.component, event.type_name).inc()

    async def dead_letter(self, message, kind: str, reason: str, event: Event | None = None) -> None:
        key = message.key
        correlation = event.correlation_id if event is not None else (
            key.decode(errors="replace") if key else f"{message.topic}/{message.partition}/{message.offset}")
        letter = DeadLetter.new(
            correlation_id=correlation,
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                    f"dlq/{self.component}/{message.topic}/{message.partition}/{message.offset}")),
            component=self.component, source_topic=str(message.topic), source_partition=int(message.partition),
            source_offset=int(message.offset), error_kind=kind, reason=reason[:2000],
            key=key, payload=message.value,
        )
        log.warning("%s: dead letter from %s[%s]@%s: %s: %s", self.component, message.topic,
                    message.partition, message.offset, kind, reason)
        await self.publish(letter, topics.DEAD_LETTERS[self.component])
        metrics.DEAD_LETTERS.labels(self.component, kind).inc()

    async def _send_to_kafka(self, name: str, key: bytes, value: bytes, partition: int | None) -> None:
        # Into Faust's producer buffer, like the tables' changelog writes: no task per message, and
        # Faust flushes the buffer before it commits an offset, so at-least-once holds.
        self._faust_topic(name).send_soon(key=key, value=value, partition=partition)

    async def _record_lag(self) -> None:
        try:
            record_consumer_lag(self.app, self.component)
        except Exception:  # a metric must never take the worker down
            log.exception("%s: recording consumer lag failed", self.component)

    async def _publish_ticks(self) -> None:
        now = now_ms()
        try:
            for partition in range(self.clock.partitions):
                tick = ClockTicked.new(correlation_id="clock", occurred_at=now, now=now, component=self.component)
                await self.publish(tick, self.clock, partition=partition)
        except Exception:  # a missed tick only delays deadlines by one interval; never crash the worker
            log.exception("%s: publishing clock ticks failed", self.component)


def positive(field: str) -> Check:
    def check(event: Event) -> str | None:
        value = getattr(event, field)
        return None if value is not None and value > 0 else f"{field} must be > 0, got {value}"
    return check


def correlates_by(field: str) -> Check:
    """The contract that an event's correlation id is its ``field`` (e.g. booking_id)."""
    def check(event: Event) -> str | None:
        value = getattr(event, field)
        if not value:
            return f"{field} must not be empty"
        if event.correlation_id != value:
            return f"correlation_id {event.correlation_id!r} must equal {field} {value!r}"
        return None
    return check


def all_of(*checks: Check) -> Check:
    def check(event: Event) -> str | None:
        for one in checks:
            reason = one(event)
            if reason:
                return reason
        return None
    return check


def non_empty(*fields: str) -> Check:
    def check(event: Event) -> str | None:
        for field in fields:
            if not getattr(event, field):
                return f"{field} must not be empty"
        return None
    return check


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def share_of(key: str, salt: str = "") -> float:
    """A stable number in [0, 1) for a key: deterministic choices (delays, failures) reruns agree on."""
    return (uuid.uuid5(uuid.NAMESPACE_OID, f"{salt}/{key}").int % 1_000_000) / 1_000_000

