"""The correlation observer of any system, as a component: it reads every topic that carries a fact of
the system's process catalog, plus its own clock, and publishes AnomalyDetected on its anomalies topic
when a transaction deviates from its catalog entry, and nothing else: it observes, it never drives.

State: one record per correlation id in the ``transactions`` table (the facts seen and the anomalies
already reported; see :mod:`streams.observer`), written to its changelog once per commit. Time: the
``ClockTicked`` messages its leader publishes to every partition of its clock topic; a tick on partition p
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
from opengym_streams.observer import WAKE, Observer, ObserverConfig, in_flight
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


class Progress:
    """How far this worker has got through each input partition, so it never calls a fact missing that
    is still waiting, unread, on another topic (after a restart the backlog of each topic drains at its
    own pace while the clock ticks at wall-clock time).

    ``judge_until(now)`` is ``now`` while the worker is caught up; while a partition still has unread
    messages it is at most the time of the last fact handled there: a fact still waiting on it was
    published after that one, so only deadlines before it can be judged.
    """

    VIEW_TTL_S = 0.25
    """How long a look at the consumer's high watermarks is reused: messages that arrived since are
    younger than that, well inside the grace the observer gives facts in flight."""

    def __init__(self, consumer_view: Callable[[], Any] | None = None, view_ttl_s: float | None = None,
                 enabled: bool = True):
        self.next_offset: dict[tuple[str, int], int] = {}
        self.last_time: dict[tuple[str, int], int] = {}
        self.consumer_view = consumer_view or (lambda: None)
        self.view_ttl_s = self.VIEW_TTL_S if view_ttl_s is None else view_ttl_s
        self.enabled = enabled
        self._view = None
        self._view_at = float("-inf")

    def _current_view(self):
        now = time.monotonic()
        if self._view is None or now - self._view_at >= self.view_ttl_s:
            self._view, self._view_at = self.consumer_view(), now
        return self._view

    def handled(self, message, occurred_at: int | None) -> None:
        tp = (message.topic, message.partition)
        self.next_offset[tp] = max(self.next_offset.get(tp, 0), message.offset + 1)
        if occurred_at is not None:
            self.last_time[tp] = max(self.last_time.get(tp, 0), occurred_at)

    def judge_until(self, now: int) -> int:
        if not self.enabled:
            return now
        view = self._current_view()
        if view is None:
            return now
        limit = now
        for tp, (highwater, committed) in view.items():
            if highwater is None:
                return 0  # nothing fetched yet: nothing is known about what waits there
            done = max(self.next_offset.get(tp, 0), committed or 0)
            if highwater > done:
                limit = min(limit, self.last_time.get(tp, 0))
        return limit


def faust_consumer_view(component: Component, inputs: Callable[[], set[str]]):
    """{(topic, partition): (highwater, committed offset at assignment)} for the input topics."""
    def view() -> dict[tuple[str, int], tuple[int | None, int | None]] | None:
        if "runtime" not in component.__dict__:  # no Faust app (a unit test drives the handlers)
            return None
        consumer = getattr(component.app, "_consumer", None)
        if consumer is None:
            return None
        try:
            assigned = consumer.assignment()
        except Exception:  # not started (agent tests) or between assignments
            return None
        committed = getattr(consumer, "_committed_offset", {})
        names = inputs()
        return {(tp.topic, tp.partition): (consumer.highwater(tp), committed.get(tp))
                for tp in assigned if tp.topic in names}
    return view


class Observing:
    """The observer's handlers over the pure engine, with its clock and read progress."""

    def __init__(self, observer: Observer, clock: Clock, progress: Progress):
        self.observer = observer
        self.clock = clock
        self.progress = progress
        self._source: tuple[str, int, int] | None = None

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
        return self._settled(outcome)

    def tick(self, state: dict | None, tick: Event, now: int) -> Result | Ignored:
        if state is None or now < state[WAKE]:
            return ignore("not due")
        return self._settled(self.observer.on_tick(state, tick.correlation_id, now))

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

    component = Component(spec, topics=system.topics, settings=settings, clock=clock_topic, agents=(agent,),
                          timers=((config.gauge_interval, lambda: update_gauges(component, observing)),),
                          catalog=catalog, on_app=(serve_the_transaction_view,))
    observing.progress.consumer_view = faust_consumer_view(component, lambda: {topic_name(t) for t in sources})
    component.observing = observing
    component.sources = sources
    return component


def update_gauges(component: Component, observing: Observing) -> None:
    """In flight per business transaction, oldest open age per process, state size (read-only on the table)."""
    states = list(component.runtime.tables["transactions"].values())
    metrics.OBSERVER_STATE.set(len(states))
    counts, oldest = in_flight(observing.observer, states, observing.clock.now or now_ms())
    for name, count in counts.items():
        metrics.IN_FLIGHT.labels(name).set(count)
    for (bt, process), age in oldest.items():
        metrics.OLDEST_OPEN_SECONDS.labels(bt, process).set(age)
