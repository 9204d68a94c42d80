"""The correlation agent under agent.test_context(): facts in, AnomalyDetected out, nothing else."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

import agents.correlation as correlation
import topics
from monitoring import metrics
from streams.app import partition_of
from streams.bench import facts
from streams.codec import AvroCodec
from streams.models import ClockTicked, InstrumentGranted
from topics import topic_for_event, topic_name

T0 = 1_700_000_000_000


@pytest.fixture
def harness(monkeypatch):
    """The observer agent with a recording sink, a mock registry and a changelog that goes nowhere."""
    sent: list[tuple[str, bytes, bytes]] = []

    async def sink(name, key, value, partition):
        sent.append((name, key, value))

    codec = AvroCodec(registry=SchemaRegistryClient.new_client({"url": f"mock://corr-{uuid.uuid4().hex}"}))
    monkeypatch.setattr(correlation.rt, "sink", sink)
    monkeypatch.setattr(correlation.rt, "_codec", codec)
    monkeypatch.setattr(correlation.transactions, "send_changelog",
                        lambda partition, key, value, **kw: SimpleNamespace(
                            message=SimpleNamespace(partition=partition_of(key))))
    monkeypatch.setattr(correlation.clock, "now", 0)
    monkeypatch.setattr(correlation.clock, "partitions", {})
    agent = correlation.app.agents["correlation.observe"]

    class Harness:
        def __init__(self, ctx):
            self.ctx = ctx
            self.sent = sent

        async def fact(self, event, partition=None):
            topic = topic_name(topic_for_event(event.avro_name))
            await self.ctx.put(key=event.correlation_id.encode(), value=codec.encode(event, topic),
                               partition=partition_of(event.correlation_id) if partition is None else partition)

        async def tick(self, now, partition, component="correlation"):
            tick = ClockTicked.new(correlation_id="clock", occurred_at=now, now=now, component=component)
            await self.ctx.put(key=b"clock", value=codec.encode(tick, topic_name(topics.CORRELATION_CLOCK)),
                               partition=partition)

        async def raw(self, value: bytes, partition=0):
            await self.ctx.put(key=b"junk", value=value, partition=partition)

        def anomalies(self, correlation_id):
            # The table outlives one test (module-level app), so look at this test's transaction only.
            return [a for a in (codec.decode(value) for name, _, value in sent
                                if name == topic_name(topics.CORRELATION_ANOMALIES))
                    if a.correlation_id == correlation_id]

    def run(scenario):
        async def go():
            async with agent.test_context() as ctx:
                await scenario(Harness(ctx))
        asyncio.run(go())
        return sent

    return SimpleNamespace(run=run, sent=sent, codec=codec)


def booking_id() -> str:
    return f"b-{uuid.uuid4().hex[:10]}"


def test_nested_timeout_is_published_once_on_the_anomalies_topic(harness):
    bid = booking_id()
    seen = {}

    async def scenario(h):
        for event in facts.booking(bid, T0, facts.NESTED_TIMEOUT):
            await h.fact(event)
        await h.tick(T0 + 60_000, partition_of(bid))
        await h.tick(T0 + 61_000, partition_of(bid))
        seen["anomalies"] = h.anomalies(bid)

    sent = harness.run(scenario)
    assert [(a.kind.value, a.process, a.correlation_id) for a in seen["anomalies"]] == [
        ("NESTED_TIMEOUT", "InstrumentConsumeProcess", bid)]
    assert {name for name, _, _ in sent} == {topic_name(topics.CORRELATION_ANOMALIES)}
    assert correlation.transactions[bid]["r"]


def test_a_tick_touches_only_the_transactions_of_its_partition(harness):
    bid = booking_id()
    seen = {}

    async def scenario(h):
        for event in facts.booking(bid, T0, facts.NESTED_TIMEOUT):
            await h.fact(event)
        for partition in range(topics.PARTITIONS):
            if partition != partition_of(bid):
                await h.tick(T0 + 60_000, partition)
        seen["before"] = h.anomalies(bid)
        await h.tick(T0 + 60_000, partition_of(bid))
        seen["after"] = h.anomalies(bid)

    harness.run(scenario)
    assert seen["before"] == [] and len(seen["after"]) == 1


def test_other_components_ticks_do_not_move_the_observers_clock(harness):
    bid = booking_id()
    seen = {}

    async def scenario(h):
        for event in facts.booking(bid, T0, facts.NOTIFICATION_NEVER_STARTED):
            await h.fact(event)
        await h.tick(T0 + 3_600_000, partition_of(bid), component="reservation")
        seen["anomalies"] = h.anomalies(bid)

    harness.run(scenario)
    assert seen["anomalies"] == [] and correlation.clock.now == 0


def test_events_outside_the_catalog_are_counted_but_keep_no_state(harness):
    granted = InstrumentGranted.new(correlation_id=f"member-{uuid.uuid4().hex[:6]}", instrument_id="i",
                                    member_id="m", home_gym_id="g", kind="CLASS_PACK", credits=3)
    before = metrics.OBSERVED.labels("InstrumentGranted")._value.get()

    async def scenario(h):
        await h.fact(granted)

    sent = harness.run(scenario)
    assert granted.correlation_id not in correlation.transactions
    assert metrics.OBSERVED.labels("InstrumentGranted")._value.get() == before + 1
    assert sent == []


def test_redelivered_facts_change_nothing_and_count_as_duplicates(harness):
    bid = booking_id()
    events = facts.booking(bid, T0, facts.LATE_REPLY)
    before = metrics.DUPLICATES.labels("correlation", "InstrumentConsumed")._value.get()
    seen = {}

    async def scenario(h):
        for event in events + events:
            await h.fact(event)
        await h.tick(T0 + 60_000, partition_of(bid))
        seen["anomalies"] = h.anomalies(bid)

    harness.run(scenario)
    assert sorted(a.kind.value for a in seen["anomalies"]) == ["LATE_REPLY", "NESTED_TIMEOUT"]
    assert metrics.DUPLICATES.labels("correlation", "InstrumentConsumed")._value.get() == before + 1


def test_clean_booking_records_the_nested_round_trip(harness):
    bid = booking_id()
    histogram = metrics.NESTED_ROUND_TRIP.labels("InstrumentConsumeProcess")
    before = histogram._sum.get()

    async def scenario(h):
        for event in facts.booking(bid, T0, facts.CLEAN):
            await h.fact(event)

    sent = harness.run(scenario)
    assert histogram._sum.get() == pytest.approx(before + 0.02)
    assert sent == []


def test_garbage_goes_to_the_observers_own_dead_letter_topic_and_the_stream_goes_on(harness):
    bid = booking_id()
    seen = {}

    async def scenario(h):
        await h.raw(b"not avro at all")
        for event in facts.booking(bid, T0, facts.NESTED_TIMEOUT):
            await h.fact(event)
        await h.tick(T0 + 60_000, partition_of(bid))
        seen["anomalies"] = h.anomalies(bid)

    sent = harness.run(scenario)
    assert {name for name, _, _ in sent} == {topic_name(topics.DEAD_LETTERS["correlation"]),
                                             topic_name(topics.CORRELATION_ANOMALIES)}
    assert len(seen["anomalies"]) == 1


def test_the_observer_declares_only_its_own_topics_as_outputs():
    own = {t.name for t in topics.ALL_TOPICS if t.owner == "correlation"}
    assert {t.name for t in correlation.OUTPUTS} <= own
    assert topics.CORRELATION_ANOMALIES in correlation.OUTPUTS
    assert not set(correlation.OUTPUTS) & set(correlation.SOURCES)


def test_gauges_show_transactions_in_flight_and_the_oldest_open_process(harness):
    bid = booking_id()
    t0 = 2_000_000_000_000  # later than every other test's transactions, so this one is the oldest open

    async def scenario(h):
        for event in facts.booking(bid, t0, facts.CLEAN)[:2]:  # booked, consume requested, no reply yet
            await h.fact(event)
        await h.tick(t0 + 3000, partition_of(bid))

    harness.run(scenario)
    correlation.update_gauges()
    assert metrics.IN_FLIGHT.labels("Member Books a Class")._value.get() >= 1
    assert metrics.OLDEST_OPEN_SECONDS.labels("Member Books a Class", "InstrumentConsumeProcess")._value.get() \
        >= 2.98
    assert metrics.OBSERVER_STATE._value.get() >= 1


def test_the_due_index_is_rebuilt_from_the_table_after_a_rebalance():
    from streams.app import DueIndex

    index = DueIndex(wake=lambda state: state["n"])
    table = {"k-early": {"n": 100}, "k-late": {"n": 10_000}}
    index.refresh(generation=1, table=table)
    assert index.due(partition_of("k-early"), now=500) == ["k-early"]
    table["k-new"] = {"n": 200}  # written by the recovery of a newly assigned partition
    index.refresh(generation=1, table=table)
    assert "k-new" not in index.due(partition_of("k-new"), now=500)
    index.refresh(generation=2, table=table)
    assert "k-new" in index.due(partition_of("k-new"), now=500)
    index.drop("k-new")
    assert "k-new" not in index.due(partition_of("k-new"), now=500)


def test_a_partition_is_judged_by_its_own_latest_tick_not_by_a_faster_partition(harness):
    bid = booking_id()
    mine = partition_of(bid)
    other = (mine + 1) % topics.PARTITIONS
    seen = {}

    async def scenario(h):
        for event in facts.booking(bid, T0, facts.NESTED_TIMEOUT):
            await h.fact(event)
        await h.tick(T0 + 600_000, other)   # another partition's clock ran far ahead
        await h.tick(T0 + 6_000, mine)      # this partition's first tick past the deadline + grace
        seen["anomalies"] = h.anomalies(bid)

    harness.run(scenario)
    assert [a.detected_at for a in seen["anomalies"]] == [T0 + 6_000]


def test_while_a_partition_has_unread_facts_nothing_after_its_last_read_fact_is_judged():
    waiting = ("opengym.entitlement.requests", 1)
    caught_up = ("opengym.reservation.events", 1)
    view = {waiting: (10, 4), caught_up: (7, 7)}
    progress = correlation.Progress(consumer_view=lambda: view, view_ttl_s=0)
    assert progress.judge_until(T0) == 0, "unread messages and nothing handled there yet: judge nothing"
    progress.handled(SimpleNamespace(topic=waiting[0], partition=1, offset=6), T0 - 60_000)
    assert progress.judge_until(T0) == T0 - 60_000
    progress.handled(SimpleNamespace(topic=waiting[0], partition=1, offset=9), T0 - 1_000)
    assert progress.judge_until(T0) == T0, "caught up everywhere: the tick's time"
    view[caught_up] = (None, 7)
    assert progress.judge_until(T0) == 0, "a partition not fetched yet"


def test_a_restarted_observer_catching_up_does_not_call_a_waiting_request_missing(harness, monkeypatch):
    bid = booking_id()
    events = facts.booking(bid, T0, facts.CLEAN)
    request, reply = events[1], events[2]
    request_tp = (topic_name(topics.ENTITLEMENT_REQUESTS), partition_of(bid))
    view = {request_tp: (1, 0)}  # the request is still unread on its topic
    monkeypatch.setattr(correlation, "progress", correlation.Progress(consumer_view=lambda: view, view_ttl_s=0))
    seen = {}

    async def scenario(h):
        await h.fact(reply)                                   # the reply's topic drained first
        await h.tick(T0 + 3_600_000, partition_of(bid))       # wall-clock tick, far past every deadline
        await h.fact(request)
        for event in events[3:]:                              # the other topics drain too
            await h.fact(event)
        seen["while_behind"] = h.anomalies(bid)
        view[request_tp] = (1, 1)                             # caught up everywhere
        await h.tick(T0 + 3_600_000 + 1000, partition_of(bid))
        seen["after"] = h.anomalies(bid)

    harness.run(scenario)
    assert seen["while_behind"] == [] and seen["after"] == []


def test_the_transactions_table_writes_each_changed_key_once_per_commit(harness, monkeypatch):
    from streams.app import flush_table_changes

    flush_table_changes(correlation.app)  # whatever earlier tests left pending
    records: list[tuple[int, str, object]] = []
    monkeypatch.setattr(correlation.transactions, "send_changelog",
                        lambda partition, key, value, **kw: records.append((partition, key, value)))
    first, second = booking_id(), booking_id()

    async def scenario(h):
        for event in facts.booking(first, T0) + facts.booking(second, T0):
            await h.fact(event)

    harness.run(scenario)
    assert records == [], "nothing reaches the changelog before a commit"
    assert len(facts.booking(first, T0)) > 2, "several facts per transaction, so several state changes"

    assert flush_table_changes(correlation.app) == 2
    assert sorted(records, key=lambda r: r[1]) == sorted(
        [(partition_of(key), key, correlation.transactions[key]) for key in (first, second)], key=lambda r: r[1])
    assert flush_table_changes(correlation.app) == 0, "a flushed key is written again only when it changes"
