"""The runtime around every agent, driven by agent.test_context(): dead letters, dedupe, ticks."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

import topics
from streams.codec import AvroCodec
from streams.models import (BookClassRequested, ClockTicked, InstrumentConsumed, ReservationConfirmed,
                            ScheduleClassRequested, SeatHeld, SeatHoldRequested)
from streams.app import partition_of
from topics import topic_name


class Recorder:
    """Stands in for Kafka: what the component published, decoded, per topic."""

    def __init__(self, codec: AvroCodec):
        self.codec = codec
        self.sent: list[tuple[str, bytes, object]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes, partition):
        self.sent.append((topic, key, self.codec.decode(value)))

    def of_type(self, name: str) -> list:
        return [event for _, _, event in self.sent if event.type_name == name]


@pytest.fixture
def codec():
    return AvroCodec(registry=SchemaRegistryClient.new_client({"url": "mock://components-agent-tests"}))


@pytest.fixture
def reservation(codec):
    import agents.reservation as component

    recorder = Recorder(codec)
    component.rt.codec = codec
    component.rt.sink = recorder
    component.bookings.data.clear()
    component.classes.data.clear()
    yield component, recorder
    assert_no_handler_errors(recorder)


def assert_no_handler_errors(recorder):
    crashed = [d.reason for d in recorder.of_type("DeadLetter") if d.error_kind == "HANDLER_ERROR"]
    assert crashed == [], f"handlers raised: {crashed}"


def encode(codec, event, topic=None) -> bytes:
    topic = topic or topics.topic_for_event(event.avro_name)
    return codec.encode(event, topic_name(topic))


def run(coro):
    return asyncio.run(coro)


def test_booking_request_holds_a_seat_then_asks_entitlement(reservation, codec):
    component, recorder = reservation
    book = BookClassRequested.new(correlation_id="b1", booking_id="b1", member_id="m1", class_id="c1")

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, book), key=b"b1")
    run(scenario())
    holds = recorder.of_type("SeatHoldRequested")
    assert [h.booking_id for h in holds] == ["b1"]
    assert recorder.sent[0][0] == topic_name(topics.RESERVATION_SEATS) and recorder.sent[0][1] == b"c1"


def schedule(class_id="c1", capacity=1, gym="gym-a", starts_at=2_000_000):
    return ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id=gym, capacity=capacity,
                                      starts_at=starts_at)


def test_garbage_bytes_are_dead_lettered_and_the_stream_goes_on(reservation, codec):
    component, recorder = reservation
    book = BookClassRequested.new(correlation_id="b2", booking_id="b2", member_id="m1", class_id="c1")

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(b"\x00not avro at all", key=b"junk")
            await agent.put(b"plain garbage", key=None)
            await agent.put(encode(codec, book), key=b"b2")
    run(scenario())
    letters = recorder.of_type("DeadLetter")
    assert [(d.error_kind, d.component) for d in letters] == [("UNKNOWN_SCHEMA_ID", "reservation"),
                                                             ("NOT_FRAMED", "reservation")]
    assert letters[1].payload == b"plain garbage" and letters[0].key == b"junk"
    assert all(topic == topic_name(topics.DEAD_LETTERS["reservation"]) for topic, _, e in recorder.sent
               if e.type_name == "DeadLetter")
    assert [h.booking_id for h in recorder.of_type("SeatHoldRequested")] == ["b2"]


def test_contract_violations_are_dead_lettered_with_the_reason(reservation, codec):
    component, recorder = reservation
    wrong_key = BookClassRequested.new(correlation_id="other", booking_id="b3", member_id="m1", class_id="c1")
    no_seats = schedule(capacity=0)
    foreign = ReservationConfirmed.new(correlation_id="b4", booking_id="b4", member_id="m1", class_id="c1")

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, wrong_key), key=b"other")
            await agent.put(encode(codec, no_seats), key=b"c1")
            await agent.put(encode(codec, foreign), key=b"b4")
    run(scenario())
    letters = recorder.of_type("DeadLetter")
    assert [d.error_kind for d in letters] == ["CONTRACT_VIOLATION"] * 3
    assert "correlation_id 'other' must equal booking_id 'b3'" in letters[0].reason
    assert "capacity must be > 0" in letters[1].reason
    assert "ReservationConfirmed does not belong on" in letters[2].reason
    assert len(recorder.sent) == 3


def test_a_redelivered_request_is_handled_once(reservation, codec):
    component, recorder = reservation
    book = BookClassRequested.new(correlation_id="b5", booking_id="b5", member_id="m1", class_id="c1")

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, book), key=b"b5")
            await agent.put(encode(codec, book), key=b"b5")
    run(scenario())
    assert len(recorder.of_type("SeatHoldRequested")) == 1


def test_seat_keeper_never_overbooks_a_class(reservation, codec):
    component, recorder = reservation
    holds = [SeatHoldRequested.new(correlation_id=f"b{i}", booking_id=f"b{i}", member_id="m", class_id="c1")
             for i in range(3)]

    async def scenario():
        async with component.rt.agents["keep_seats"].test_context() as agent:
            await agent.put(encode(codec, schedule(capacity=2)), key=b"c1")
            for hold in holds:
                await agent.put(encode(codec, hold, topics.RESERVATION_SEATS), key=b"c1")
    run(scenario())
    assert [e.booking_id for e in recorder.of_type("SeatHeld")] == ["b0", "b1"]
    assert [(e.booking_id, e.reason.value) for e in recorder.of_type("SeatRefused")] == [("b2", "CLASS_FULL")]
    assert len(recorder.of_type("ClassScheduled")) == 1


def test_a_tick_past_the_deadline_rejects_and_a_late_consume_is_released(reservation, codec):
    component, recorder = reservation
    book = BookClassRequested.new(correlation_id="b6", booking_id="b6", member_id="m1", class_id="c1",
                                  occurred_at=1_000_000)
    held = SeatHeld.new(caused_by=book, booking_id="b6", class_id="c1", gym_id="gym-a", starts_at=2_000_000)
    partition = partition_of("b6")
    early = ClockTicked.new(correlation_id="clock", now=1_000_000 + component.config.timeout_ms - 1,
                            component="reservation")
    late = ClockTicked.new(correlation_id="clock", now=1_000_000 + component.config.timeout_ms,
                           component="reservation")
    consumed = InstrumentConsumed.new(correlation_id="b6", booking_id="b6", member_id="m1", instrument_id="pack-1",
                                      instrument_kind="CLASS_PACK", home_gym_id="gym-b", credits_remaining=3)

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, book), key=b"b6", partition=partition)
            await agent.put(encode(codec, held, topics.RESERVATION_SEAT_REPLIES), key=b"b6", partition=partition)
            await agent.put(encode(codec, early, topics.RESERVATION_COMMANDS), key=b"clock", partition=partition)
            assert recorder.of_type("ReservationRejected") == []
            await agent.put(encode(codec, late, topics.RESERVATION_COMMANDS), key=b"clock",
                            partition=(partition + 1) % topics.PARTITIONS)
            assert recorder.of_type("ReservationRejected") == [], "a tick only expires its own partition's bookings"
            await agent.put(encode(codec, late, topics.RESERVATION_COMMANDS), key=b"clock", partition=partition)
            await agent.put(encode(codec, consumed), key=b"b6", partition=partition)
    run(scenario())
    rejected = recorder.of_type("ReservationRejected")
    assert [(r.booking_id, r.reason.value) for r in rejected] == [("b6", "ENTITLEMENT_TIMEOUT")]
    assert [r.booking_id for r in recorder.of_type("SeatReleaseRequested")] == ["b6"]
    releases = recorder.of_type("InstrumentReleaseRequested")
    assert [(r.instrument_id, r.reason.value) for r in releases] == [("pack-1", "LATE_CONSUME")]
    assert recorder.of_type("ReservationConfirmed") == []


def test_a_tick_visits_only_the_bookings_still_waiting_not_the_finished_ones(reservation, codec):
    component, recorder = reservation
    waiting, finished = "b-waiting", "b-finished"
    book_waiting = BookClassRequested.new(correlation_id=waiting, booking_id=waiting, member_id="m1", class_id="c1")
    book_finished = BookClassRequested.new(correlation_id=finished, booking_id=finished, member_id="m1",
                                           class_id="c1")
    held = SeatHeld.new(caused_by=book_finished, booking_id=finished, class_id="c1", gym_id="gym-a",
                        starts_at=2_000_000)
    consumed = InstrumentConsumed.new(correlation_id=finished, booking_id=finished, member_id="m1",
                                      instrument_id="pack-1", instrument_kind="CLASS_PACK", home_gym_id="gym-b",
                                      credits_remaining=3)
    seen = {}

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            for event, topic in ((book_waiting, None), (book_finished, None),
                                 (held, topics.RESERVATION_SEAT_REPLIES), (consumed, None)):
                await agent.put(encode(codec, event, topic), key=event.correlation_id.encode(),
                                partition=partition_of(event.correlation_id))
            far = 10**13
            seen["due"], seen["all"], seen["not yet"] = (
                {key for p in range(topics.PARTITIONS) for key, _ in component.rt.due(component.bookings, p, *now)}
                for now in ((far,), (), (1_000_000,)))
    run(scenario())
    assert [c.booking_id for c in recorder.of_type("ReservationConfirmed")] == [finished]
    assert seen["all"] == {waiting, finished}, "the table keeps finished bookings (for dedupe)"
    assert seen["due"] == {waiting}, "a tick visits only the booking still waiting for its seat"
    assert seen["not yet"] == set(), "nor that one before its seat wait runs out"


def test_notifications_sends_once_per_booking_when_confirmations_arrive_twice(codec):
    import agents.notifications as component

    recorder = Recorder(codec)
    component.rt.codec, component.rt.sink = codec, recorder
    first = ReservationConfirmed.new(correlation_id="b7", booking_id="b7", member_id="m1", class_id="c1")
    replayed_copy = first.model_copy(update={"event_id": "another-id-same-booking"})

    async def scenario():
        async with component.rt.agents["notify"].test_context() as agent:
            for event in (first, first, replayed_copy):
                await agent.put(encode(codec, event), key=b"b7")
    run(scenario())
    assert [n.booking_id for n in recorder.of_type("NotificationSent")] == ["b7"]
    assert_no_handler_errors(recorder)


def test_entitlement_holds_a_delayed_reply_until_a_tick_releases_it(codec, monkeypatch):
    import agents.entitlement as component
    from agents.entitlement.logic import EntitlementConfig
    from streams.models import InstrumentConsumeRequested, InstrumentGrantRequested

    recorder = Recorder(codec)
    component.rt.codec, component.rt.sink = codec, recorder
    monkeypatch.setattr(component, "config", EntitlementConfig(delay_share=1.0, delay_ms=500))
    grant = InstrumentGrantRequested.new(correlation_id="m9", instrument_id="pack-9", member_id="m9",
                                         home_gym_id="gym-b", kind="CLASS_PACK", credits=2)
    consume = InstrumentConsumeRequested.new(correlation_id="b9", booking_id="b9", member_id="m9", class_id="c1",
                                             gym_id="gym-a", class_starts_at=2_000_000)
    partition = partition_of("m9")

    def tick(now):
        return encode(codec, ClockTicked.new(correlation_id="clock", now=now, component="entitlement"),
                      topics.ENTITLEMENT_MEMBERS)

    async def scenario():
        async with component.rt.agents["keep_instruments"].test_context() as agent:
            await agent.put(encode(codec, grant), key=b"m9", partition=partition)
            await agent.put(encode(codec, consume), key=b"m9", partition=partition)
            assert recorder.of_type("InstrumentConsumed") == []
            await agent.put(tick(component.rt.now() - 60_000), key=b"clock", partition=partition)
            assert recorder.of_type("InstrumentConsumed") == []
            await agent.put(tick(component.rt.now() + 60_000), key=b"clock", partition=partition)
    run(scenario())
    assert [(c.booking_id, c.credits_remaining) for c in recorder.of_type("InstrumentConsumed")] == [("b9", 1)]
    assert_no_handler_errors(recorder)


def test_entitlement_requests_are_repartitioned_by_member_and_bad_ones_dead_lettered(codec):
    import agents.entitlement as component
    from streams.models import InstrumentConsumeRequested, InstrumentGrantRequested

    recorder = Recorder(codec)
    component.rt.codec, component.rt.sink = codec, recorder
    consume = InstrumentConsumeRequested.new(correlation_id="b10", booking_id="b10", member_id="m10", class_id="c1",
                                             gym_id="gym-a", class_starts_at=2_000_000)
    empty_pack = InstrumentGrantRequested.new(correlation_id="m10", instrument_id="pack-0", member_id="m10",
                                              home_gym_id="gym-b", kind="CLASS_PACK", credits=0)

    async def scenario():
        async with component.rt.agents["route_requests"].test_context() as agent:
            await agent.put(encode(codec, consume), key=b"b10")
            await agent.put(encode(codec, empty_pack), key=b"m10")
    run(scenario())
    forwarded = [(topic, key, event.type_name) for topic, key, event in recorder.sent if event.type_name != "DeadLetter"]
    assert forwarded == [(topic_name(topics.ENTITLEMENT_MEMBERS), b"m10", "InstrumentConsumeRequested")]
    assert [(d.error_kind, "credits > 0" in d.reason) for d in recorder.of_type("DeadLetter")] == \
        [("CONTRACT_VIOLATION", True)]


def test_an_event_that_makes_the_handler_raise_is_dead_lettered_and_the_next_one_handled(reservation, codec,
                                                                                         monkeypatch):
    component, recorder = reservation
    from agents.reservation import orchestration

    real = orchestration.on_event

    def fragile(state, event, **kwargs):
        if event.type_name == "BookClassRequested" and event.booking_id == "poison":
            raise ValueError("cannot handle this one")
        return real(state, event, **kwargs)

    monkeypatch.setattr(orchestration, "on_event", fragile)
    poison = BookClassRequested.new(correlation_id="poison", booking_id="poison", member_id="m1", class_id="c1")
    fine = BookClassRequested.new(correlation_id="b11", booking_id="b11", member_id="m1", class_id="c1")

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, poison), key=b"poison")
            await agent.put(encode(codec, fine), key=b"b11")
    run(scenario())
    letters = recorder.of_type("DeadLetter")
    assert [(d.error_kind, d.correlation_id) for d in letters] == [("HANDLER_ERROR", "poison")]
    assert "ValueError: cannot handle this one" in letters[0].reason
    recorder.sent = [s for s in recorder.sent if s[2].type_name != "DeadLetter"]  # expected here, not a failure
    assert [h.booking_id for h in recorder.of_type("SeatHoldRequested")] == ["b11"]


def test_a_reply_for_a_booking_never_started_is_ignored_but_counted(reservation, codec):
    from monitoring.metrics import OUTCOMES

    component, recorder = reservation
    counter = OUTCOMES.labels("reservation", "ignored:InstrumentConsumed")
    before = counter._value.get()
    stray = InstrumentConsumed.new(correlation_id="never", booking_id="never", member_id="m1", instrument_id="p",
                                   instrument_kind="CLASS_PACK", home_gym_id="gym-b", credits_remaining=1)

    async def scenario():
        async with component.rt.agents["orchestrate"].test_context() as agent:
            await agent.put(encode(codec, stray), key=b"never")
    run(scenario())
    assert recorder.sent == [] and counter._value.get() == before + 1
