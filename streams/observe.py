"""The correlation observer of any system, as a component: it reads every topic that carries a fact of
the system's process catalog, plus its own clock, and publishes AnomalyDetected on its anomalies topic
when a transaction deviates from its catalog entry, and nothing else: it observes, it never drives.

State: one record per correlation id in the ``transactions`` table (the facts seen and the anomalies
already reported; see :mod:`streams.observer`), written to its changelog once per commit. Time: the
``ClockTicked`` messages each worker publishes to every partition of its clock topic it holds; a tick on partition p
touches only the transactions whose key lives on p and whose next wake-up has come.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from opengym_streams.monitoring import metrics
from opengym_streams.catalog import Catalog
from opengym_streams.component import CLOCK_TICKED, Agent, Component
from opengym_streams.event import Event, Ignored, Result, conflict, duplicate, ignore, now_ms
from opengym_streams.progress import Progress, faust_consumer_view  # noqa: F401 (re-exported)
from opengym_streams.observer import COMPLETED, WAKE, InFlight, Observer, ObserverConfig
from opengym_streams.settings import Settings
from opengym_streams.system import System
from opengym_streams.topic import Topic, topic_name


RULES_FILE = Path(metrics.__file__).resolve().parent / "prometheus" / "alerts.yml"
"""The alert rules the transaction view links anomalies to."""


def observed_topics(system: System, catalog: Catalog) -> tuple[Topic, ...]:
    """Every contract topic that carries an event the catalog mentions, in catalog topic order."""
    names = {short for short in catalog.events}
    return tuple(t for t in system.topics.contract if t.short_names & names and t.kind not in ("anomalies", "clock"))


def outputs(system: System) -> tuple[Topic, ...]:
    """Everything the observer may write to: its anomalies, its own clock ticks and its dead letters."""
    observer = system.observer.name
    return tuple(t for t in system.topics.owned_by(observer) if t.kind in ("anomalies", "clock", "dlq"))


class Clock:
    """The observer's time: the latest tick's ``now`` (0 until the first tick after a start), overall and
    per partition. Partitions are consumed at their own pace, so a partition's transactions are judged
    by that partition's latest tick: the overall latest could be ahead of ticks not yet read there."""

    def __init__(self) -> None:
        self.now = 0
        self.partitions: dict[int, int] = {}

    def tick(self, partition: int, now: int) -> int:
        self.now = max(self.now, now)
        self.partitions[partition] = max(self.partitions.get(partition, 0), now)
        return self.partitions[partition]


class Observing:
    """The observer's handlers over the pure engine, with its clock and read progress."""

    def __init__(self, observer: Observer, clock: Clock, progress: Progress):
        self.observer = observer
        self.clock = clock
        self.progress = progress
        self._source: tuple[str, int, int] | None = None
        self.open: dict[str, dict] = {}
        """The states of the transactions still open, by correlation id: what the gauges read (kept by
        every fact and tick, so an export walks the open ones, not the whole history)."""
        self.in_flight = InFlight(observer)
        """The gauges' derivations of the open transactions, kept per state until a deadline."""
        self.reseed = True
        """Set when the table changed under us (recovery, a rebalance): the next export rebuilds ``open``."""
        self.last_gauges: tuple[float, dict, dict] | None = None
        """``(monotonic time, in flight, oldest open)`` of the last gauge export (the UI's overview shows it)."""

    def _track(self, key: str, state: dict | None) -> None:
        if state is not None and state[COMPLETED] is None:
            self.open[key] = state
        else:
            self.open.pop(key, None)

    def open_states(self, table) -> dict[str, dict]:
        if self.reseed:
            self.reseed = False
            self.open = {key: state for key, state in table.items() if state[COMPLETED] is None}
        return self.open

    def now(self) -> int:
        return self.progress.judge_until(self.clock.now)

    def tick_time(self, partition: int, now: int) -> int:
        return self.progress.judge_until(self.clock.tick(partition, now))

    def saw(self, message, event: Event | None) -> None:
        # Every record read counts as read, dead-lettered or not (its own ticks sit on a topic the
        # progress view does not watch).
        self.progress.handled(message, event.occurred_at if event is not None else None)
        self._source = (message.topic, message.partition, message.offset)
        if event is not None and event.type_name != CLOCK_TICKED:
            metrics.OBSERVED.labels(event.type_name).inc()

    def fact(self, state: dict | None, event: Event, now: int) -> Result | Ignored:
        outcome = self.observer.on_event(state, event, now, self._source)
        if not outcome.relevant:
            return ignore("not in the catalog")
        if outcome.conflict is not None:
            return conflict(outcome.conflict)
        if outcome.duplicate:
            return duplicate("fact seen before")
        for process, seconds in outcome.round_trips:
            metrics.NESTED_ROUND_TRIP.labels(process).observe(seconds)
        settled = self._settled(outcome)
        self._track(event.correlation_id, settled[0])
        return settled

    def tick(self, state: dict | None, tick: Event, now: int) -> Result | Ignored:
        if state is None or now < state[WAKE]:
            return ignore("not due")
        settled = self._settled(self.observer.on_tick(state, tick.correlation_id, now))
        self._track(tick.correlation_id, settled[0])  # None: let go
        return settled

    @staticmethod
    def _settled(outcome) -> Result:
        for anomaly in outcome.anomalies:
            metrics.ANOMALIES.labels(anomaly.kind.value, anomaly.business_transaction, anomaly.process,
                                     anomaly.process_owner or "").inc()
        # The engine changes the state it is given; a new dict tells the runtime to store it.
        return (dict(outcome.state) if outcome.state is not None else None), list(outcome.anomalies)


def build_observer(system: System, settings: Settings | None = None, config: ObserverConfig | None = None) -> Component:
    spec = system.observer
    config = config or ObserverConfig.from_env()
    catalog = system.processes()
    sources = observed_topics(system, catalog)
    clock_topic = next(t for t in system.topics.owned_by(spec.name) if t.kind == "clock")
    observing = Observing(Observer(catalog, config), Clock(), Progress(enabled=config.watermark))
    handlers: dict[str, Any] = {}
    if not config.decode_only:
        handlers = {name: observing.fact for name in catalog.events} | {CLOCK_TICKED: observing.tick}
        handlers = {name: fn for name, fn in handlers.items()
                    if any(name in t.short_names for t in (*sources, clock_topic))}
    agent = Agent("observe", reads=(*sources, clock_topic), table="transactions", handlers=handlers,
                  dedupe=False, wake=lambda state: state[WAKE],
                  now=observing.now, tick_time=observing.tick_time, observe=observing.saw)
    anomalies = next(t for t in system.topics.owned_by(spec.name) if t.kind == "anomalies")

    def keep_the_open_set(runtime) -> None:
        async def table_changed(*args: Any, **kwargs: Any) -> None:
            observing.reseed = True

        runtime.tables["transactions"].on_recover(table_changed)
        runtime.app.on_partitions_revoked.connect(table_changed)

    def serve_the_transaction_view(runtime) -> None:
        from opengym_streams.codec import AvroCodec
        from opengym_streams.ui import UIConfig, install_ui

        component.ui = install_ui(
            runtime.app, table=runtime.tables["transactions"], observer=observing.observer,
            clock=lambda: observing.clock.now, codec_factory=AvroCodec, anomalies_topic=topic_name(anomalies),
            prefix=runtime.settings.topic_prefix, route_topic=topic_name(clock_topic),
            dead_letter_topics={c: topic_name(t) for c, t in system.topics.dead_letters.items()},
            redrive_topics={c: topic_name(t) for c, t in system.topics.redrives.items()},
            rules_file=RULES_FILE, runbook_file=system.runbook,
            alertmanager_url=UIConfig.from_env().alertmanager_url or None)
        component.ui.gauges = lambda: observing.last_gauges

    component = Component(spec, topics=system.topics, settings=settings, clock=clock_topic, agents=(agent,),
                          timers=((config.gauge_interval, lambda: update_gauges(component, observing)),),
                          catalog=catalog, on_app=(keep_the_open_set, serve_the_transaction_view))
    observing.progress.consumer_view = faust_consumer_view(component, lambda: {topic_name(t) for t in sources})
    component.observing = observing
    component.sources = sources
    return component


def update_gauges(component: Component, observing: Observing) -> None:
    """In flight per business transaction, oldest open age per process, state size (read-only on the table)."""
    table = component.runtime.tables["transactions"]
    metrics.OBSERVER_STATE.set(len(table.data) if hasattr(table, "data") else len(table))
    counts, oldest = observing.in_flight.measure(observing.open_states(table), observing.clock.now or now_ms())
    observing.last_gauges = (time.monotonic(), counts, oldest)
    for name, count in counts.items():
        metrics.IN_FLIGHT.labels(name).set(count)
    for (bt, process), age in oldest.items():
        metrics.OLDEST_OPEN_SECONDS.labels(bt, process).set(age)
