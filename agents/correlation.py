"""Correlation: listens to every topic that carries a catalog fact, plus its own clock; emits
AnomalyDetected on ``opengym.correlation.anomalies`` when a transaction deviates from its catalog entry,
and nothing else: it observes, it never drives.

State: one record per correlation id in the ``transactions`` table (the facts seen and the anomalies
already reported; see :mod:`streams.observer`). Time: the ``ClockTicked`` messages its leader publishes
to every partition of ``opengym.correlation.clock``; a tick on partition p touches only the
transactions whose key lives on p and whose next wake-up has come (:class:`streams.app.DueIndex`), so every state
write lands in its own changelog partition and a quiet tick costs next to nothing.

Run: ``opengym worker correlation`` or ``faust -A agents.correlation worker -l info``.
"""

from __future__ import annotations

import os
import time

import topics
from agents.catalog import build
from monitoring import metrics
from streams.app import Runtime, env_float
from streams.codec import AvroCodec
from streams.settings import REPO_ROOT, get_settings
from streams.ui import install_ui
from streams.event import now_ms
from streams.observer import WAKE, Observer, ObserverConfig, Outcome, in_flight
from topics import Topic, topic_for_event, topic_name


def observed_topics(catalog) -> tuple[Topic, ...]:
    """Every contract topic that carries an event the catalog mentions, in catalog topic order."""
    carriers = {topic_for_event(topic_avro_name(event)).name for event in catalog.events}
    return tuple(t for t in topics.CONTRACT_TOPICS if t.name in carriers)


def topic_avro_name(short_name: str) -> str:
    from streams.models import BY_NAME

    return BY_NAME[short_name].avro_name


catalog = build()
observer = Observer(catalog, ObserverConfig.from_env())
SOURCES = observed_topics(catalog)
OUTPUTS = (topics.CORRELATION_ANOMALIES, topics.CORRELATION_CLOCK, topics.DEAD_LETTERS["correlation"])
"""Everything the observer may write to: its anomalies, its own clock ticks and its dead letters."""

DECODE_ONLY = os.environ.get("OPENGYM_OBSERVER_DECODE_ONLY", "") not in ("", "0")
"""The benchmark's baseline: the same worker, decoding every message and doing nothing else."""

rt = Runtime("correlation", clock=topics.CORRELATION_CLOCK)
app = rt.app
transactions = rt.table("transactions", write_behind=True, wake=lambda state: state[WAKE])
"""Written to its changelog once per commit, not once per fact (:class:`streams.app.WriteBehindTable`):
a transaction's state changes with every fact, and the observer's changelog was a quarter of all the
records the pipeline wrote (docs/performance.md). A tick visits only the transactions whose wake-up
time has come (:class:`streams.app.DueIndex`)."""


class Clock:
    """The observer's time: the latest tick's ``now`` (0 until the first tick after a start), overall and
    per partition. Partitions are consumed at their own pace, so a partition's transactions are judged
    by that partition's latest tick: the overall latest could be ahead of ticks not yet read there."""

    now = 0
    partitions: dict[int, int] = {}

    def tick(self, partition: int, now: int) -> int:
        self.now = max(self.now, now)
        self.partitions[partition] = max(self.partitions.get(partition, 0), now)
        return self.partitions[partition]


clock = Clock()


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

    def __init__(self, consumer_view=None, view_ttl_s: float | None = None):
        self.next_offset: dict[tuple[str, int], int] = {}
        self.last_time: dict[tuple[str, int], int] = {}
        self.consumer_view = consumer_view or _faust_consumer_view
        self.view_ttl_s = self.VIEW_TTL_S if view_ttl_s is None else view_ttl_s
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
        if not WATERMARK:
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


def _faust_consumer_view() -> dict[tuple[str, int], tuple[int | None, int | None]] | None:
    """{(topic, partition): (highwater, committed offset at assignment)} for the input topics."""
    consumer = getattr(app, "_consumer", None)
    if consumer is None:
        return None
    try:
        assigned = consumer.assignment()
    except Exception:  # not started (agent tests) or between assignments
        return None
    committed = getattr(consumer, "_committed_offset", {})
    inputs = {topic_name(t) for t in SOURCES}
    return {(tp.topic, tp.partition): (consumer.highwater(tp), committed.get(tp))
            for tp in assigned if tp.topic in inputs}


WATERMARK = os.environ.get("OPENGYM_OBSERVER_WATERMARK", "1") not in ("0", "")
progress = Progress()
_dead_letter = rt.dead_letter


async def _dead_letter_and_note(message, *args, **kwargs):
    # A message the runtime dead-letters never reaches the agent; it was still read.
    progress.handled(message, None)
    await _dead_letter(message, *args, **kwargs)


rt.dead_letter = _dead_letter_and_note


@rt.agent(*SOURCES, topics.CORRELATION_CLOCK,
          accepts={name.rsplit(".", 1)[-1]: None for t in SOURCES for name in t.events})
async def observe(event, message):
    if DECODE_ONLY:
        return
    if event.type_name == "ClockTicked":
        if event.component != rt.component:
            progress.handled(message, event.occurred_at)
            return  # other components' ticks share their commands topics; only ours move our clock
        now = progress.judge_until(clock.tick(message.partition, event.now))
        for key, state in rt.due(transactions, message.partition, now):
            await settle(key, observer.on_tick(state, key, now))
        return
    progress.handled(message, event.occurred_at)
    metrics.OBSERVED.labels(event.type_name).inc()
    key = event.correlation_id
    outcome = observer.on_event(transactions.get(key), event, progress.judge_until(clock.now),
                                (message.topic, message.partition, message.offset))
    if not outcome.relevant:
        return
    if outcome.duplicate:
        metrics.DUPLICATES.labels(rt.component, event.type_name).inc()
    for process, seconds in outcome.round_trips:
        metrics.NESTED_ROUND_TRIP.labels(process).observe(seconds)
    await settle(key, outcome)


async def settle(key: str, outcome: Outcome) -> None:
    # Publish before storing: a crash in between replays the input, which re-derives the same anomaly
    # (same anomaly_id and event_id), so consumers dedupe it; the other order could lose it.
    for anomaly in outcome.anomalies:
        await rt.publish(anomaly)
        metrics.ANOMALIES.labels(anomaly.kind.value, anomaly.business_transaction, anomaly.process,
                                 anomaly.process_owner or "").inc()
    if not outcome.changed:
        return
    if outcome.state is None:
        if key in transactions:
            del transactions[key]
    else:
        transactions[key] = outcome.state  # the table's due index follows the new wake-up time


ui = install_ui(app, table=transactions, observer=observer, clock=lambda: clock.now, codec_factory=AvroCodec,
                anomalies_topic=topic_name(topics.CORRELATION_ANOMALIES), prefix=get_settings().topic_prefix,
                route_topic=topic_name(topics.CORRELATION_CLOCK),
                dead_letter_topics={c: topic_name(t) for c, t in topics.DEAD_LETTERS.items()},
                redrive_topics={c: topic_name(t) for c, t in topics.REDRIVES.items()},
                rules_file=REPO_ROOT / "monitoring/prometheus/alerts.yml", runbook_file=REPO_ROOT / "docs/runbook.md",
                alertmanager_url=os.environ.get("OPENGYM_ALERTMANAGER_URL"))
"""The transaction view on this worker's web server (OPENGYM_UI_PORT, default 6108; docs/observer.md)."""


@app.timer(env_float("OPENGYM_OBSERVER_GAUGE_INTERVAL", 5.0))
async def export_gauges() -> None:
    update_gauges()


def update_gauges() -> None:
    """In flight per business transaction, oldest open age per process, state size (read-only on the table)."""
    states = list(transactions.values())
    metrics.OBSERVER_STATE.set(len(states))
    counts, oldest = in_flight(observer, states, clock.now or now_ms())
    for name, count in counts.items():
        metrics.IN_FLIGHT.labels(name).set(count)
    for (bt, process), age in oldest.items():
        metrics.OLDEST_OPEN_SECONDS.labels(bt, process).set(age)
