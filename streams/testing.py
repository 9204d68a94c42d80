"""Saga tests that read like the saga: given these facts, when this event (or this much time), expect these
events on these topics.

::

    scenario = Scenario(reservation.build(), follow=True)
    scenario.given(schedule, grant)
    scenario.when(book)
    scenario.expect(("opengym.entitlement.requests", "InstrumentConsumeRequested"))
    scenario.when_time_passes(5_000)
    scenario.expect(("opengym.reservation.events", "ReservationRejected", {"reason": "ENTITLEMENT_TIMEOUT"}),
                    ("opengym.reservation.seats", "SeatReleaseRequested"))

Two tiers, one API. ``Scenario(component)`` runs the component's own :class:`~streams.runtime.Processor`
(admission, dispatch, dedupe, outcomes: the code the workers run) over dict tables, with no Kafka and no
registry. ``Scenario(component, tier="agent")`` puts each record, Avro-encoded on a ``mock://`` registry,
through the component's real Faust agents with ``agent.test_context()``. Time only moves when the test
says so (:meth:`Scenario.when_time_passes` publishes the component's clock ticks). With ``follow=True``
what the component publishes to a topic it reads itself (a repartitioning hop) is delivered back to it.
With ``local_hops=True`` (unit tier) such a hop is handed over in process, as a worker holding the
target partition does, and never shows among the published records.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable

from mode.utils import loops as _mode_loops

from opengym_streams.component import CLOCK_TICKED, Agent, Component, unpack
from opengym_streams.event import Event
from opengym_streams.tables import DueIndex, partition_of
from opengym_streams.topic import Topic, topic_name

T0 = 1_700_000_000_000


@dataclass(frozen=True)
class Published:
    topic: str
    """The topic's contract name (no prefix)."""
    key: str
    event: Event

    @property
    def type(self) -> str:
        return self.event.type_name


class DictTable(dict):
    """A table for the pure tier: a dict with the due index a Faust table of the runtime has."""

    def __init__(self, wake=None, partitions: int = 4):
        super().__init__()
        self.due_index = DueIndex(wake, partitions) if wake is not None else None

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if self.due_index is not None:
            self.due_index.put(key, value)

    def __delitem__(self, key):
        super().__delitem__(key)
        if self.due_index is not None:
            self.due_index.drop(key)


class Scenario:
    """One component, or several (a choreography: with ``follow=True`` each reacts to what the one before
    it published). A record goes to every agent of the scenario that reads its topic."""

    def __init__(self, *components: Component, now: int = T0, follow: bool = False, tier: str = "unit",
                 local_hops: bool = False, behind: bool = False):
        if tier not in ("unit", "agent"):
            raise ValueError("tier is 'unit' or 'agent'")
        if not components:
            raise ValueError("a scenario needs a component")
        self.components = components
        self.component = components[0]
        self.now = now
        self.follow = follow
        self.tier = tier
        self.local_hops = local_hops
        self.behind = behind
        """Unit tier, given as True: as if unread facts waited on other partitions (a replay after a
        crash): a handler's ``not_yet`` parks its event, and ticks judge no deadline (and wait the
        runtime's grace once caught up). Set it to False to catch up."""
        if local_hops and tier != "unit":
            raise ValueError("local_hops is a unit-tier option (the agent tier holds no partitions)")
        self.published: list[Published] = []
        self.last: list[Published] = []
        self._offset = 0
        self._reads: dict[str, list[tuple[Component, Agent, Topic]]] = {}
        for component in components:
            for agent in component.agents:
                for topic in agent.reads:
                    self._reads.setdefault(topic.name, []).append((component, agent, topic))
        self._tables: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        # Faust's services schedule their waits (a batch's timeout among them) on the loop mode resolved
        # for them, and mode caches the first loop a thread resolved: both must be the scenario's.
        asyncio.set_event_loop(self._loop)
        _mode_loops._current_loop.loop = self._loop
        if tier == "unit":
            self._setup_unit()
        else:
            self._setup_agent()

    # ---- the API ----------------------------------------------------------------------------------

    def given(self, *events: Event, on: Topic | None = None) -> "Scenario":
        """Deliver these facts in order (what they make the component publish is kept, not checked)."""
        for event in events:
            self._deliver(event, on)
        return self

    def when(self, event: Event, *, on: Topic | None = None, key: str | bytes | None = "",
             value: bytes | None = None, timestamp_ms: int | None = None, partition: int | None = None) -> list[Published]:
        """Deliver one record and return what the component published because of it. ``key`` (None: no
        key), ``value`` (raw bytes instead of the encoded event), ``timestamp_ms`` (the broker's) and
        ``partition`` (default: the key's) make broken or unusual records."""
        return self._deliver(event, on, key=key, value=value, timestamp_ms=timestamp_ms, partition=partition)

    def when_time_passes(self, ms: int) -> list[Published]:
        """Move time on and deliver each component's clock tick to every partition of its clock topic where
        the runtime would send one (unit tier: where a state is due, see ``Processor.tick_wanted``)."""
        from opengym_streams.models import ClockTicked

        self.now += ms
        before = len(self.published)
        for component in self.components:
            clock = component.clock
            if clock is None:
                continue
            processor = getattr(self, "_processors", {}).get(component.name)
            for partition in range(clock.partitions):
                if processor is not None and not processor.tick_wanted(partition, self.now):
                    continue  # as the runtime's clock: no tick where it would visit nothing
                tick = ClockTicked.new(correlation_id="clock", occurred_at=self.now, now=self.now,
                                       component=component.name)
                self._deliver(tick, clock, partition=partition, record=False)
        self.last = self.published[before:]
        return self.last

    def expect(self, *expected: tuple, outputs: list[Published] | None = None) -> list[Published]:
        """The last step published exactly these, in this order: ``(topic, type)`` or ``(topic, type,
        {field: value})`` (enum fields compare by symbol)."""
        outputs = self.last if outputs is None else outputs
        seen = [(p.topic, p.type) for p in outputs]
        wanted = [(e[0] if isinstance(e[0], str) else e[0].name, e[1]) for e in expected]
        assert seen == wanted, f"expected {wanted}, published {seen}"
        for want, got in zip(expected, outputs):
            for field, value in (want[2] if len(want) > 2 else {}).items():
                actual = getattr(got.event, field)
                actual = getattr(actual, "value", actual)
                assert actual == value, f"{got.type}.{field}: expected {value!r}, got {actual!r}"
        return outputs

    def expect_nothing(self) -> None:
        assert self.last == [], f"expected nothing, published {[(p.topic, p.type) for p in self.last]}"

    def of_type(self, name: str) -> list[Event]:
        """Every event of this type the component published so far."""
        return [p.event for p in self.published if p.type == name]

    def state(self, table: str, key: str) -> dict | None:
        """The business state under ``key`` (without the runtime's dedupe memory)."""
        record = self._tables[table].get(key)
        agent = next(a for c in self.components for a in c.agents if a.table == table)
        return unpack(record)[0] if agent.dedupe else record

    def forget(self, table: str, key: str | None = None) -> None:
        """What a crash that lost a table's state since its last commit does (``key``: that record only)."""
        if key is None:
            for name in list(self._tables[table]):
                del self._tables[table][name]
        elif key in self._tables[table]:
            del self._tables[table][key]

    def dead_letters(self) -> list[Event]:
        return self.of_type("DeadLetter")

    def close(self) -> None:
        if self.tier == "agent":
            for ctx in self._contexts.values():
                self._loop.run_until_complete(ctx.__aexit__(None, None, None))
        self._loop.close()
        asyncio.set_event_loop(None)
        _mode_loops._current_loop.loop = None

    def __enter__(self) -> "Scenario":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- delivery ---------------------------------------------------------------------------------

    def _topic_for(self, event: Event) -> Topic:
        name = event.type_name
        topics = self.component.topics
        candidates = [t for t in topics.contract if name in t.short_names and t.name in self._reads]
        candidates += [t for t in topics.internal if name in t.short_names and t.name in self._reads]
        if not candidates:
            raise LookupError(f"no component of the scenario reads a topic that carries {name}")
        return candidates[0]

    def _deliver(self, event: Event, on: Topic | None, *, key: str | bytes | None = "", value: bytes | None = None,
                 timestamp_ms: int | None = None, partition: int | None = None, record: bool = True) -> list[Published]:
        topic = on or self._topic_for(event)
        if topic.name not in self._reads:
            raise LookupError(f"no component of the scenario reads {topic.name}")
        if key == "":
            key = str(getattr(event, topic.key, None) or event.correlation_id)
        key_bytes = key.encode() if isinstance(key, str) else key
        if partition is None:
            partition = partition_of(key_bytes.decode(errors="replace") if key_bytes else "", topic.partitions)
        timestamp_ms = event.occurred_at if timestamp_ms is None else timestamp_ms
        before = len(self.published)
        pending = [(topic, event, key_bytes, value, partition, timestamp_ms)]
        while pending:
            topic, event, key_bytes, raw, partition, timestamp_ms = pending.pop(0)
            for component, agent, _ in self._reads[topic.name]:
                start = len(self.published)
                self._loop.run_until_complete(
                    self._one(component, agent, topic, event, key_bytes, raw, partition, timestamp_ms))
                if self.follow:
                    for out in self.published[start:]:
                        if out.topic in self._reads and out.type != "DeadLetter":
                            next_topic = self._reads[out.topic][0][2]
                            pending.append((next_topic, out.event, out.key.encode(), None,
                                            partition_of(out.key, next_topic.partitions), out.event.occurred_at))
        outputs = self.published[before:]
        if record:
            self.last = outputs
        return outputs

    # ---- the unit tier: the component's Processor over dict tables --------------------------------

    def _setup_unit(self) -> None:
        from opengym_streams.runtime import Processor, _unwrapped

        scenario = self

        class Recording(Processor):
            def now(self) -> int:
                return scenario.now

            def owns(self, topic: Topic, partition: int) -> bool:
                return scenario.local_hops  # as if this worker held every partition

        class Behind:
            """The unit tier's :class:`~opengym_streams.progress.Progress`: behind while ``scenario.behind``."""

            def handled(self, message, occurred_at) -> None:
                pass

            def judge_until(self, now: int) -> int:
                return 0 if scenario.behind else now

            def replaying(self) -> bool:
                return scenario.behind

        self._processors = {}
        for component in self.components:
            processor = Recording(component, local_hops=self.local_hops)
            if self.behind:  # (otherwise ticks judge at the tick's time, without the runtime's grace)
                processor._progress = {agent.name: Behind() for agent in component.agents
                                       if agent.table is not None and agent.tick_time is None}
            processor.sink = self._record_unit
            processor.tables = self._tables
            self._processors[component.name] = processor
            for agent in component.agents:
                if agent.table is not None:
                    wake = agent.wake if agent.wake is None or not agent.dedupe else _unwrapped(agent.wake)
                    self._tables[agent.table] = DictTable(wake, component.topics.partitions)
        self.processor = self._processors[self.component.name]

    async def _record_unit(self, name: str, key: bytes, value: Any, partition: int | None) -> None:
        self.published.append(Published(self.component.topics.lookup(name).name, key.decode(), value))

    async def _one(self, component: Component, agent: Agent, topic: Topic, event: Event, key: bytes | None,
                   raw: bytes | None, partition: int, timestamp_ms: int) -> None:
        self._offset += 1
        if self.tier == "agent":
            await self._put(component, agent, topic, event, key, raw, partition, timestamp_ms)
            return
        value = raw if raw is not None else b"\0\0\0\0\0" + json.dumps(event.to_json_dict(), sort_keys=True).encode()
        message = SimpleNamespace(topic=topic_name(topic), partition=partition, offset=self._offset, key=key,
                                  value=value, timestamp=timestamp_ms / 1000.0)
        table = self._tables.get(agent.table) if agent.table is not None else None
        processor = self._processors[component.name]
        await processor.process(agent, table, message, event)
        await processor.release_held()  # each event is a batch of its own here

    # ---- the agent tier: the real Faust agents under test_context() --------------------------------

    def _setup_agent(self) -> None:
        from types import SimpleNamespace as NS

        from confluent_kafka.schema_registry import SchemaRegistryClient

        from opengym_streams.codec import AvroCodec
        from opengym_streams.contracts import load_contracts

        scenario = self
        self.codec = AvroCodec(registry=SchemaRegistryClient.new_client({"url": f"mock://scenario-{uuid.uuid4().hex}"}),
                               contracts=load_contracts(self.component.system))
        self._contexts = {}
        for component in self.components:
            runtime = component.runtime
            runtime.codec = self.codec
            runtime.sink = self._record_agent
            runtime.now = lambda: scenario.now
            for name, table in runtime.tables.items():
                table.data.clear()
                table.send_changelog = lambda partition, key, value, **kw: NS(message=NS(partition=partition))
                self._tables[name] = table
            for agent in component.agents:
                ctx = runtime.agents[agent.name].test_context()
                self._contexts[(component.name, agent.name)] = self._loop.run_until_complete(ctx.__aenter__())

    async def _record_agent(self, name: str, key: bytes, value: bytes, partition: int | None) -> None:
        self.published.append(Published(self.component.topics.lookup(name).name, key.decode(), self.codec.decode(value)))

    async def _put(self, component: Component, agent: Agent, topic: Topic, event: Event, key: bytes | None,
                   raw: bytes | None, partition: int, timestamp_ms: int) -> None:
        ctx = self._contexts[(component.name, agent.name)]
        name = topic_name(topic)
        value = raw if raw is not None else self.codec.encode(event, name)
        make = ctx.to_message

        def to_message(*args: Any, **kwargs: Any):
            message = make(*args, **kwargs)
            message.topic = name  # an agent over several topics would say "<internal>"
            return message

        ctx.to_message = to_message
        try:
            await ctx.put(value=value, key=key, partition=partition, timestamp=timestamp_ms / 1000.0)
        finally:
            ctx.to_message = make


def events_of(outputs: Iterable[Published], name: str) -> list[Event]:
    return [p.event for p in outputs if p.type == name]


__all__ = ["Published", "Scenario", "T0", "events_of", "CLOCK_TICKED"]
