"""The batched hot path's two promises, on the runtime's own code (no broker): an in-process hop gives the
same outcome as the same hop through Kafka, and no offset is committed ahead of the outputs and state changes
of the events before it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

import opengym.agents.reservation as reservation
from opengym.models import BookClassRequested, ScheduleClassRequested
from opengym_streams.runtime import DeliveryFailed, Runtime
from opengym_streams.testing import Scenario

T0 = 1_000_000


def schedule():
    return ScheduleClassRequested.new(correlation_id="c1", class_id="c1", gym_id="gym-a", capacity=1,
                                      starts_at=T0 + 3_600_000, occurred_at=T0)


def book(booking_id):
    return BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1",
                                  class_id="c1", occurred_at=T0)


FACTS = (schedule(), book("b1"), book("b2"))


def run_booking(**options):
    scheduled, b1, b2 = FACTS
    with Scenario(reservation.build(), now=T0, **options) as saga:
        saga.given(scheduled)
        first = saga.when(b1)
        second = saga.when(b2)  # the class is full now
        return first, second, saga.state("bookings", "b1"), saga.state("bookings", "b2")


def test_a_hop_to_a_partition_this_worker_holds_is_handed_over_in_process_with_the_same_outcome():
    through_kafka = run_booking(follow=True)
    in_process = run_booking(local_hops=True)
    kafka_first, kafka_second, kafka_b1, kafka_b2 = through_kafka
    local_first, local_second, local_b1, local_b2 = in_process
    # Through Kafka the seat request and its answer are records; in process they are not published at all.
    assert [p.type for p in kafka_first] == ["SeatHoldRequested", "SeatHeld", "InstrumentConsumeRequested"]
    assert [p.type for p in local_first] == ["InstrumentConsumeRequested"]
    assert local_first[0].event == kafka_first[-1].event  # same derived ids, same content
    hops = {kafka_first[0].topic, kafka_first[1].topic}  # the seats topic and the seat replies
    assert [p.type for p in local_second] == ["ReservationRejected"]
    assert [p.event for p in local_second] == [p.event for p in kafka_second if p.topic not in hops]
    assert local_b1 == kafka_b1 and local_b2 == kafka_b2


def test_with_in_process_hops_a_responders_state_is_durable_before_anything_after_it_leaves():
    """The seat keeper decides one class's holds for bookings from every partition, in the order the
    batches interleave them; a replay would interleave them otherwise. So its state is written down
    before the answer built on it (here the request to Entitlement) is sent."""
    scheduled, b1, _ = FACTS
    order = []
    with Scenario(reservation.build(), now=T0, local_hops=True) as saga:
        saga.given(scheduled)
        processor = saga.processor
        sink = processor.sink

        async def persist_now(table, keys, settled=False):
            assert settled, "the state written is the one to keep: the commit need not send it again"
            order.append(("durable", [k for k, v in saga._tables.items() if v is table][0], keys))

        async def recording_sink(name, key, value, partition):
            order.append(("sent", name))
            await sink(name, key, value, partition)

        processor.persist_now = persist_now
        processor.sink = recording_sink
        published = saga.when(b1)
    assert [p.type for p in published] == ["InstrumentConsumeRequested"]
    assert order == [("durable", "classes", ["c1"]), ("sent", published[0].topic)]


def test_a_tick_decision_is_announced_while_its_outbox_is_still_in_the_record_even_with_outputs_held():
    """A tick's decision is durable with its outbox before it is announced, and the outbox is cleared
    right after. Held behind a responder's state, the announcement would leave after the clearing, and
    a crash in between (the cleared record already durable) would lose it."""
    from opengym import topics
    from opengym_streams.component import OUTBOX
    from opengym_streams.models import ClockTicked
    from opengym_streams.tables import partition_of

    scheduled, b1, _ = FACTS
    with Scenario(reservation.build(), now=T0, local_hops=True) as saga:
        saga.given(scheduled, b1)  # b1 holds its seat and waits for Entitlement
        processor = saga.processor
        sink = processor.sink
        outbox_when_sent = []

        async def recording_sink(name, key, value, partition):
            if key == b"b1":
                outbox_when_sent.append(OUTBOX in saga._tables["bookings"]["b1"])
            await sink(name, key, value, partition)

        processor.sink = recording_sink
        processor._undurable = {"classes": {"c1"}}  # as if the keeper had changed a class earlier in the batch
        later = T0 + 24 * 3_600_000
        tick = ClockTicked.new(correlation_id="clock", occurred_at=later, now=later, component="reservation")
        out = saga.when(tick, on=topics.RESERVATION_COMMANDS, key="clock", partition=partition_of("b1"))
    assert "ReservationRejected" in [p.type for p in out]
    assert outbox_when_sent and all(outbox_when_sent), "announced before the outbox was cleared"


def test_through_kafka_nothing_waits_for_a_responders_state():
    scheduled, b1, _ = FACTS
    with Scenario(reservation.build(), now=T0) as saga:
        saga.given(scheduled)
        durable = []

        async def persist_now(table, keys, settled=False):
            durable.append(keys)

        saga.processor.persist_now = persist_now
        assert [p.type for p in saga.when(b1)] == ["SeatHoldRequested"]
        assert not saga.processor._held and not durable


class Producer:
    """Stands in for the broker's acknowledgements: every record sent gets a future the test resolves."""

    def __init__(self):
        self.sent: list[tuple[str, bytes, bytes | None, asyncio.Future]] = []

    async def produce(self, name, key, value, partition):
        future = asyncio.get_running_loop().create_future()
        self.sent.append((name, key, value, future))
        return future


@pytest.fixture
def runtime(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENGYM_STORE", "memory")
    monkeypatch.setenv("OPENGYM_HOME", str(tmp_path))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = Runtime(reservation.build())
    producer = Producer()
    runtime._produce = producer.produce
    runtime.crashed = []

    async def crash(reason):
        runtime.crashed.append(reason)

    runtime.app.crash = crash
    yield runtime, producer, loop
    loop.close()
    asyncio.set_event_loop(None)


def test_state_goes_to_the_changelog_only_after_the_outputs_are_confirmed_and_the_commit_waits_for_both(runtime):
    runtime, producer, loop = runtime

    async def scenario():
        await runtime.sink("opengym.reservation.events", b"b1", b"out-1", None)
        table = runtime.tables["bookings"]
        table["b1"] = {"phase": "A"}
        table["b1"] = {"phase": "B"}  # written twice, sent once
        commit = asyncio.ensure_future(runtime.before_commit())
        await asyncio.sleep(0)
        assert [s[0] for s in producer.sent] == ["opengym.reservation.events"]  # state waits for the output
        assert not commit.done()
        producer.sent[0][3].set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
        changelog = [s for s in producer.sent[1:]]
        assert len(changelog) == 1 and changelog[0][0] == table.changelog_name()
        # What Faust's recovery reads back from that record: the latest value of the key.
        _, key, value, _ = changelog[0]
        record = SimpleNamespace(topic=changelog[0][0], partition=0, offset=0, key=key, value=value,
                                 timestamp=0.0, timestamp_type=0, headers=[], checksum=None,
                                 serialized_key_size=len(key), serialized_value_size=len(value),
                                 generation_id=0, tp=None, tracked=False, span=None)
        decoded = await table.changelog_topic.decode(record, propagate=True)
        assert (decoded.key, decoded.value) == ("b1", {"phase": "B"})
        assert not commit.done()  # the changelog record is not confirmed yet
        changelog[0][3].set_result(None)
        await asyncio.wait_for(commit, 1)
        assert table.changes() == []  # nothing left to send

    loop.run_until_complete(scenario())


def test_a_state_made_durable_before_its_answers_is_sent_again_at_the_commit_only_if_it_changed_since(runtime):
    runtime, producer, loop = runtime
    runtime.sink = runtime._send_to_kafka

    async def confirm_all():
        for _ in range(5):
            for sent in producer.sent:
                if not sent[3].done():
                    sent[3].set_result(None)
            await asyncio.sleep(0)

    async def scenario():
        table = runtime.tables["classes"]
        table["c1"] = {"held": 1}
        table["c2"] = {"held": 1}
        persisting = asyncio.ensure_future(runtime.persist_now(table, ["c1", "c2"], settled=True))
        await confirm_all()
        await asyncio.wait_for(persisting, 1)
        assert [s[0] for s in producer.sent] == [table.changelog_name()] * 2
        table["c2"] = {"held": 2}  # changed after it was written
        committing = asyncio.ensure_future(runtime.before_commit())
        await confirm_all()
        await asyncio.wait_for(committing, 1)
        assert [s[1] for s in producer.sent[2:]] == [table.encode_change("c2", None)[0]], "only c2 again"

    loop.run_until_complete(scenario())


def test_an_output_the_broker_refuses_stops_every_later_commit_and_crashes_the_worker(runtime):
    runtime, producer, loop = runtime

    async def scenario():
        await runtime.sink("opengym.reservation.events", b"b1", b"out-1", None)
        runtime.tables["bookings"]["b1"] = {"phase": "A"}
        producer.sent[0][3].set_exception(RuntimeError("MessageSizeTooLarge"))
        with pytest.raises(DeliveryFailed):
            await runtime.before_commit()
        assert len(producer.sent) == 1  # the state of an undelivered output is never sent
        with pytest.raises(DeliveryFailed):
            await runtime.before_commit()
        for _ in range(3):
            await asyncio.sleep(0)
        assert [type(r) for r in runtime.crashed] == [RuntimeError]

    loop.run_until_complete(scenario())


def test_a_commit_waits_for_the_batch_that_is_running():
    from opengym_streams.runtime import CommitGate

    async def scenario():
        gate = CommitGate()
        order = []
        release = asyncio.Event()

        async def batch():
            async with gate.batch():
                order.append("batch started")
                await release.wait()
                order.append("batch done")

        async def commit():
            async with gate.closed():
                order.append("commit")

        running = asyncio.ensure_future(batch())
        await asyncio.sleep(0)
        committing = asyncio.ensure_future(commit())
        await asyncio.sleep(0)
        assert order == ["batch started"]
        release.set()
        await asyncio.gather(running, committing)
        assert order == ["batch started", "batch done", "commit"]

    asyncio.run(scenario())


def test_a_rocksdb_table_written_inside_a_batch_keeps_each_key_in_its_own_partition(monkeypatch, tmp_path):
    from opengym_streams.tables import partition_of

    monkeypatch.setenv("OPENGYM_STORE", "rocksdict")
    monkeypatch.setenv("OPENGYM_HOME", str(tmp_path))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        runtime = Runtime(reservation.build())
        table = runtime.tables["bookings"]
        table["b1"] = {"phase": "A"}  # no current event: a batch, a tick or an in-process hop
        table["b2"] = {"phase": "B"}
        assert table["b1"] == {"phase": "A"} and table["b2"] == {"phase": "B"}
        store = table.data
        for key in ("b1", "b2"):
            stored = store._encode_key(key)
            assert store._key_index[stored] == partition_of(key, table.partitions)
            assert store._db_for_partition(partition_of(key, table.partitions)).get(stored) is not None
        assert sorted(k for _, k, _ in table.changes()) == ["b1", "b2"]
    finally:
        loop.close()
        asyncio.set_event_loop(None)
