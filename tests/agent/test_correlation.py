"""The correlation observer through its real Faust agent (``agent.test_context()``): facts in,
AnomalyDetected out, nothing else."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

import opengym.agents.correlation as correlation
from opengym import topics
from opengym.agents.system import SYSTEM
from opengym_streams.monitoring import metrics
from opengym.demo import scenarios
from opengym_streams.models import ClockTicked
from opengym.models import InstrumentGranted
from opengym_streams.observe import Progress, outputs, update_gauges
from opengym_streams.tables import DueIndex, flush_table_changes, partition_of
from opengym_streams.testing import Scenario

T0 = 1_700_000_000_000
ANOMALIES = topics.CORRELATION_ANOMALIES.name


@pytest.fixture
def observer():
    with Scenario(correlation.build(), now=T0, tier="agent") as scenario:
        yield scenario


def booking_id() -> str:
    return f"b-{uuid.uuid4().hex[:10]}"


def tick(observer, now, partition, component="correlation"):
    event = ClockTicked.new(correlation_id="clock", occurred_at=now, now=now, component=component)
    return observer.when(event, on=topics.CORRELATION_CLOCK, partition=partition)


def anomalies(observer, correlation_id):
    return [p.event for p in observer.published if p.topic == ANOMALIES and p.event.correlation_id == correlation_id]


def test_nested_timeout_is_published_once_on_the_anomalies_topic(observer):
    bid = booking_id()
    observer.given(*scenarios.booking(bid, T0, scenarios.NESTED_TIMEOUT))
    tick(observer, T0 + 60_000, partition_of(bid))
    tick(observer, T0 + 61_000, partition_of(bid))
    assert [(a.kind.value, a.process, a.correlation_id) for a in anomalies(observer, bid)] == [
        ("NESTED_TIMEOUT", "InstrumentConsumeProcess", bid)]
    assert {p.topic for p in observer.published} == {ANOMALIES}
    assert observer.state("transactions", bid)["r"]


def test_a_tick_touches_only_the_transactions_of_its_partition(observer):
    bid = booking_id()
    observer.given(*scenarios.booking(bid, T0, scenarios.NESTED_TIMEOUT))
    for partition in range(topics.PARTITIONS):
        if partition != partition_of(bid):
            tick(observer, T0 + 60_000, partition)
    assert anomalies(observer, bid) == []
    tick(observer, T0 + 60_000, partition_of(bid))
    assert len(anomalies(observer, bid)) == 1


def test_other_components_ticks_do_not_move_the_observers_clock(observer):
    bid = booking_id()
    observer.given(*scenarios.booking(bid, T0, scenarios.NOTIFICATION_NEVER_STARTED))
    reservation_tick = ClockTicked.new(correlation_id="clock", occurred_at=T0 + 3_600_000, now=T0 + 3_600_000,
                                       component="reservation")
    observer.when(reservation_tick, on=topics.RESERVATION_COMMANDS, partition=partition_of(bid))
    assert anomalies(observer, bid) == [] and observer.component.observing.clock.now == 0


def test_events_outside_the_catalog_are_counted_but_keep_no_state(observer):
    granted = InstrumentGranted.new(correlation_id=f"member-{uuid.uuid4().hex[:6]}", instrument_id="i",
                                    member_id="m", home_gym_id="g", kind="CLASS_PACK", credits=3, occurred_at=T0)
    before = metrics.OBSERVED.labels("InstrumentGranted")._value.get()
    observer.when(granted)
    observer.expect_nothing()
    assert observer.state("transactions", granted.correlation_id) is None
    assert metrics.OBSERVED.labels("InstrumentGranted")._value.get() == before + 1


def test_redelivered_facts_change_nothing_and_count_as_duplicates(observer):
    bid = booking_id()
    events = scenarios.booking(bid, T0, scenarios.LATE_REPLY)
    before = metrics.DUPLICATES.labels("correlation", "InstrumentConsumed")._value.get()
    observer.given(*events, *events)
    tick(observer, T0 + 60_000, partition_of(bid))
    assert sorted(a.kind.value for a in anomalies(observer, bid)) == ["LATE_REPLY", "NESTED_TIMEOUT"]
    assert metrics.DUPLICATES.labels("correlation", "InstrumentConsumed")._value.get() == before + 1


def test_clean_booking_records_the_nested_round_trip(observer):
    histogram = metrics.NESTED_ROUND_TRIP.labels("InstrumentConsumeProcess")
    before = histogram._sum.get()
    observer.given(*scenarios.booking(booking_id(), T0, scenarios.CLEAN))
    assert histogram._sum.get() == pytest.approx(before + 0.02)
    assert observer.published == []


def test_garbage_goes_to_the_observers_own_dead_letter_topic_and_the_stream_goes_on(observer):
    bid = booking_id()
    junk = scenarios.booking(bid, T0, scenarios.CLEAN)[0]
    observer.when(junk, value=b"not avro at all", key=b"junk")
    observer.given(*scenarios.booking(bid, T0, scenarios.NESTED_TIMEOUT))
    tick(observer, T0 + 60_000, partition_of(bid))
    assert {p.topic for p in observer.published} == {"opengym.correlation.dlq", ANOMALIES}
    assert len(anomalies(observer, bid)) == 1


def test_a_fact_on_a_topic_that_does_not_carry_it_is_dead_lettered_not_observed(observer):
    visit = next(e for e in scenarios.booking(booking_id(), T0, scenarios.CLEAN_PARTNER) if e.type_name == "AttendanceRecorded")
    out = observer.when(visit, on=topics.FINANCE_EVENTS)
    assert [(p.topic, p.event.error_kind) for p in out] == [("opengym.correlation.dlq", "CONTRACT_VIOLATION")]
    assert "AttendanceRecorded does not belong on opengym.finance.events" in out[0].event.reason
    assert observer.state("transactions", visit.correlation_id) is None


def test_the_observer_declares_only_its_own_topics_as_outputs():
    own = {t.name for t in topics.ALL_TOPICS if t.owner == "correlation"}
    mine = outputs(SYSTEM)
    assert {t.name for t in mine} <= own and topics.CORRELATION_ANOMALIES in mine
    assert not set(mine) & set(correlation.build().sources)


def test_gauges_show_transactions_in_flight_and_the_oldest_open_process(observer):
    bid = booking_id()
    t0 = 2_000_000_000_000
    observer.given(*scenarios.booking(bid, t0, scenarios.CLEAN)[:2])  # booked, consume requested, no reply yet
    tick(observer, t0 + 3000, partition_of(bid))
    update_gauges(observer.component, observer.component.observing)
    assert metrics.IN_FLIGHT.labels("Member Books a Class")._value.get() >= 1
    assert metrics.OLDEST_OPEN_SECONDS.labels("Member Books a Class", "InstrumentConsumeProcess")._value.get() \
        >= 2.98
    assert metrics.OBSERVER_STATE._value.get() >= 1


def test_the_due_index_is_rebuilt_from_the_table_after_a_rebalance():
    index = DueIndex(wake=lambda state: state["n"], partitions=topics.PARTITIONS)
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


def test_a_partition_is_judged_by_its_own_latest_tick_not_by_a_faster_partition(observer):
    bid = booking_id()
    mine = partition_of(bid)
    observer.given(*scenarios.booking(bid, T0, scenarios.NESTED_TIMEOUT))
    tick(observer, T0 + 600_000, (mine + 1) % topics.PARTITIONS)  # another partition's clock ran far ahead
    tick(observer, T0 + 6_000, mine)                               # this one's first tick past deadline + grace
    assert [a.detected_at for a in anomalies(observer, bid)] == [T0 + 6_000]


def test_while_a_partition_has_unread_facts_nothing_after_its_last_read_fact_is_judged():
    waiting = ("opengym.entitlement.requests", 1)
    caught_up = ("opengym.reservation.events", 1)
    view = {waiting: (10, 4), caught_up: (7, 7)}
    progress = Progress(consumer_view=lambda: view, view_ttl_s=0)
    assert progress.judge_until(T0) == 0, "unread messages and nothing handled there yet: judge nothing"
    progress.handled(SimpleNamespace(topic=waiting[0], partition=1, offset=6), T0 - 60_000)
    assert progress.judge_until(T0) == T0 - 60_000
    progress.handled(SimpleNamespace(topic=waiting[0], partition=1, offset=9), T0 - 1_000)
    assert progress.judge_until(T0) == T0, "caught up everywhere: the tick's time"
    view[caught_up] = (None, 7)
    assert progress.judge_until(T0) == 0, "a partition not fetched yet"


def test_a_restarted_observer_catching_up_does_not_call_a_waiting_request_missing(observer):
    bid = booking_id()
    events = scenarios.booking(bid, T0, scenarios.CLEAN)
    request, reply = events[1], events[2]
    # Every topic of the booking has unread facts (the observer restarted behind a backlog); each partition
    # counts as read once its fact has been handled.
    view = {(SYSTEM.topic_for_event(e.type_name).name, partition_of(bid)): (1, 0) for e in events}
    observer.component.observing.progress.consumer_view = lambda: view
    observer.component.observing.progress.view_ttl_s = 0
    observer.when(reply)                               # the reply's topic drained first
    tick(observer, T0 + 3_600_000, partition_of(bid))  # wall-clock tick, far past every deadline
    observer.given(request, *events[3:])               # the other topics drain too
    assert anomalies(observer, bid) == []
    view.update({tp: (1, 1) for tp in view})           # caught up everywhere
    tick(observer, T0 + 3_600_000 + 1000, partition_of(bid))
    assert anomalies(observer, bid) == []


def test_the_transactions_table_writes_each_changed_key_once_per_commit(observer):
    app = observer.component.app
    table = observer.component.runtime.tables["transactions"]
    flush_table_changes(app)
    records: list[tuple[int, str, object]] = []
    table.send_changelog = lambda partition, key, value, **kw: records.append((partition, key, value))
    first, second = booking_id(), booking_id()
    observer.given(*scenarios.booking(first, T0), *scenarios.booking(second, T0))
    assert records == [], "nothing reaches the changelog before a commit"
    assert len(scenarios.booking(first, T0)) > 2, "several facts per transaction, so several state changes"
    assert flush_table_changes(app) == 2
    assert sorted(records, key=lambda r: r[1]) == sorted(
        [(partition_of(key), key, table[key]) for key in (first, second)], key=lambda r: r[1])
    assert flush_table_changes(app) == 0, "a flushed key is written again only when it changes"


def test_gauges_read_only_the_open_transactions_and_rebuild_that_set_when_the_table_changes_under_them(observer):
    observing = observer.component.observing
    closed, still_open = booking_id(), booking_id()
    t0 = 2_000_000_000_000
    observer.given(*scenarios.booking(closed, t0, scenarios.CLEAN))
    observer.given(*scenarios.booking(still_open, t0, scenarios.CLEAN)[:2])
    table = observer.component.runtime.tables["transactions"]
    observing.open_states(table)  # the first export seeds the set from the table
    assert still_open in observing.open and closed not in observing.open
    assert observer.state("transactions", closed) is not None  # kept for the UI, but not walked
    # A recovery or rebalance may bring states no fact here touched: the next export reads the table again.
    observing.open.clear()
    observing.reseed = True
    assert list(observing.open_states(table).values()) == [observer.state("transactions", still_open)]
