"""A replay after a SIGKILL decides what the first run decided (docs/notes/components.md, "Replays that
decided otherwise"), on one real Reservation worker, with this test standing in for Entitlement.

The worker does not commit during its first run (a commit interval of an hour), so the SIGKILL makes it
read everything again: the request, the seat keeper's answer, Entitlement's reply and the clock's ticks,
each topic at its own pace. The second run commits every half second, so its progress can be waited on.
Its seat holds are handed to the seat keeper in process (the default), as one worker holds every partition.

- A timeout decided on a tick, then the reply dated in time arriving late: the replay, reading that reply
  before the ticks, would confirm what the first run rejected (two terminal events). A tick's decision is
  written to the changelog before it is announced.
- A booking confirmed, then the replay reading Entitlement's reply before the booking's request: the reply
  was ignored ("no booking here"), the request asked again and, its deadline long past, timed out (two
  terminal events). A reply read before its booking waits for it (``not_yet``).
- Seat holds decided in process in one order, replayed in another: the seat went to the other booking.
  The seat keeper's state is made durable before any answer built on it leaves.
"""

from __future__ import annotations

import pytest

from opengym import topics
from opengym.models import BookClassRequested, InstrumentConsumed, ScheduleClassRequested
from opengym_streams.codec import AvroCodec
from opengym_streams.demo.collector import partition_offsets
from opengym_streams.event import now_ms
from opengym_streams.kafka import producer
from opengym_streams.tables import partition_of
from opengym.topics import topic_name
from tests.conftest import wait_for
from tests.integration.hostile_support import committed
from tests.integration.test_components_smoke import Facts, Workers, _delete_topics, _tail

TIMEOUT_MS = 4000
CONFIRM_TIMEOUT_MS = 8000
"""Room for the first run to confirm behind the padding; the replay comes after the 10 s session timeout,
with this deadline long past."""
PADDING = 400
"""Schedules ahead of the booking on its own partition of the commands topic, so that the replay reads
Entitlement's reply (alone on its partition) well before the request."""


class Rig:
    def __init__(self, workers: Workers, prefix: str, unique):
        self.workers, self.prefix = workers, prefix
        self.codec = AvroCodec()
        self.send = producer(partitioner="murmur2_random")
        self.facts = Facts(self.codec, topics.RESERVATION_EVENTS, topics.ENTITLEMENT_REQUESTS)
        self.class_id, self.booking, self.member = unique("class"), unique("booking"), unique("member")

    def produce(self, event, flush: bool = True) -> None:
        topic = topic_name(topics.topic_for_event(event.avro_name))
        self.send.produce(topic, key=event.correlation_id.encode(), value=self.codec.encode(event, topic))
        if flush:
            self.send.flush(10)

    def seen(self):
        return _tail(self.workers.log_dir)

    def of(self, type_name: str) -> list:
        return self.facts.of(type_name, booking_id=self.booking)

    def book(self) -> tuple[BookClassRequested, object]:
        self.produce(ScheduleClassRequested.new(correlation_id=self.class_id, class_id=self.class_id, gym_id="gym-a",
                                                capacity=5, starts_at=now_ms() + 3_600_000))
        # Scheduled first: the class and the booking sit on different partitions, and a hold read before
        # the schedule is refused (UNKNOWN_CLASS).
        wait_for(lambda: self.facts.of("ClassScheduled", class_id=self.class_id), 60, "the class to be scheduled",
                 seen=self.seen)
        request = BookClassRequested.new(correlation_id=self.booking, booking_id=self.booking, member_id=self.member,
                                         class_id=self.class_id)
        self.produce(request)
        ask = wait_for(lambda: self.of("InstrumentConsumeRequested"), 60, "Reservation to ask for the consume",
                       seen=self.seen)[0]
        return request, ask

    def reply(self, request, ask, occurred_at: int) -> None:
        self.produce(InstrumentConsumed.new(caused_by=ask, booking_id=self.booking, member_id=self.member,
                                            instrument_id="pack-1", instrument_kind="CLASS_PACK", home_gym_id="gym-b",
                                            credits_remaining=4, occurred_at=occurred_at))

    def crash_and_replay(self) -> None:
        inputs = (topics.RESERVATION_COMMANDS, topics.ENTITLEMENT_EVENTS, topics.RESERVATION_SEAT_REPLIES)
        ends = partition_offsets(inputs)  # everything the first run read
        assert all(offset < 0 for offset in committed("reservation", set(ends), self.prefix).values()), \
            "the first run committed: the replay would not read it all again (the test would prove nothing)"
        self.workers.kill("reservation")
        self.workers.env["OPENGYM_COMMIT_INTERVAL"] = "0.5"
        self.workers.start("reservation")

        def behind() -> dict:
            have = committed("reservation", set(ends), self.prefix)
            return {tp: (have.get(tp), end) for tp, end in ends.items() if end > max(have.get(tp, 0), 0)}

        # Committed past them: the replay has handled all of it, and confirmed what it published.
        wait_for(lambda: not behind(), 90, "the restarted worker to commit past what the first run read",
                 seen=lambda: (behind(), self.seen()))

    def terminals(self) -> list:
        return self.of("ReservationConfirmed") + self.of("ReservationRejected")

    def close(self) -> None:
        self.facts.close()


@pytest.fixture
def rig(topic_prefix, tmp_path, unique, request):
    workers = Workers(tmp_path)
    timeout_ms = getattr(request, "param", TIMEOUT_MS)
    workers.env.update({"OPENGYM_BOOKING_TIMEOUT_MS": str(timeout_ms), "OPENGYM_DEADLINE_GRACE_MS": "0",
                        "OPENGYM_COMMIT_INTERVAL": "3600", "OPENGYM_LOCAL_HOPS": "1"})
    workers.start("reservation")
    running = Rig(workers, topic_prefix, unique)
    yield running
    running.close()
    workers.stop_all()
    _delete_topics(topic_prefix)


@pytest.mark.timeout(240)
def test_a_timeout_decided_before_a_sigkill_is_not_confirmed_by_the_replay(rig):
    request, ask = rig.book()
    rejected = wait_for(lambda: rig.of("ReservationRejected"), 30, "the timeout on a tick", seen=rig.seen)
    assert rejected[0].reason.value == "ENTITLEMENT_TIMEOUT"
    # The reply, dated before the deadline, arrives after it: a late consume, given back.
    rig.reply(request, ask, occurred_at=request.occurred_at + TIMEOUT_MS // 4)
    wait_for(lambda: rig.of("InstrumentReleaseRequested"), 30, "the late consume to be released", seen=rig.seen)

    rig.crash_and_replay()
    assert {e.event_id for e in rig.terminals()} == {rejected[0].event_id}, \
        f"one terminal event, the first run's rejection: {[(e.type_name, e.event_id) for e in rig.terminals()]}"
    releases = {e.event_id for e in rig.of("InstrumentReleaseRequested")}
    assert len(releases) == 1, f"the late consume released once (the same event id on the replay): {releases}"


@pytest.mark.parametrize("rig", [CONFIRM_TIMEOUT_MS], indirect=True)
@pytest.mark.timeout(240)
def test_a_booking_confirmed_before_a_sigkill_is_not_timed_out_by_the_replay(rig):
    # Padding on the booking's own partition of the commands topic, read before its request on the replay.
    home = partition_of(rig.booking)
    padding = [f"{rig.class_id}-pad-{i}" for i in range(PADDING * topics.PARTITIONS * 2)]
    for class_id in [c for c in padding if partition_of(c) == home][:PADDING]:
        rig.produce(ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id="gym-a",
                                               capacity=1, starts_at=now_ms() + 3_600_000), flush=False)
    request, ask = rig.book()
    rig.reply(request, ask, occurred_at=now_ms())
    confirmed = wait_for(lambda: rig.of("ReservationConfirmed"), 30, "the confirmation",
                         seen=lambda: [(e.type_name, getattr(e, "reason", None)) for e in rig.terminals()])

    rig.crash_and_replay()
    assert {e.event_id for e in rig.terminals()} == {confirmed[0].event_id}, \
        f"one terminal event, the first run's confirmation: {[(e.type_name, e.event_id) for e in rig.terminals()]}"


def _on_partition(unique, partition: int, prefix: str) -> str:
    while True:
        candidate = unique(prefix)
        if partition_of(candidate) == partition:
            return candidate


@pytest.mark.parametrize("rig", [120_000], indirect=True)
@pytest.mark.timeout(240)
def test_holds_decided_in_process_before_a_sigkill_are_decided_alike_by_the_replay(rig, unique):
    """One worker holds every partition, so each seat hold is handed to the seat keeper in process, in the
    order the first run read the bookings. Each class has one seat and two bookings, the first booked
    (and holding the seat) before the second is sent. The first bookings sit behind padding on one
    partition of the commands topic, the second ones alone on another: the replay reads each partition
    at its own pace and meets the second bookings first. The seats must still go to the first bookings:
    the keeper's state was on its changelog before any answer built on it left."""
    first_on, second_on, classes_on = 0, 1, 2
    classes = [_on_partition(unique, classes_on, "class") for _ in range(6)]
    pairs = [(class_id, _on_partition(unique, first_on, "first"), _on_partition(unique, second_on, "second"))
             for class_id in classes]
    padding = [_on_partition(unique, first_on, "pad") for _ in range(PADDING // 2)]
    seats = Facts(rig.codec, topics.RESERVATION_SEATS, topics.RESERVATION_SEAT_REPLIES)
    try:
        for class_id in classes + padding:
            rig.produce(ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id="gym-a",
                                                   capacity=1, starts_at=now_ms() + 3_600_000), flush=False)
        rig.send.flush(10)
        wait_for(lambda: all(rig.facts.of("ClassScheduled", class_id=c) for c in classes + padding[-1:]), 60,
                 "the classes to be scheduled", seen=rig.seen)
        for class_id, first, _ in pairs:
            rig.produce(BookClassRequested.new(correlation_id=first, booking_id=first, member_id=rig.member,
                                               class_id=class_id))
        firsts = {first for _, first, _ in pairs}
        seconds = {second for _, _, second in pairs}

        def asked() -> set:
            return {e.booking_id for e in rig.facts.of("InstrumentConsumeRequested")}

        wait_for(lambda: firsts <= asked(), 60, "each first booking to hold its seat and ask Entitlement",
                 seen=lambda: (asked(), rig.seen()))
        for class_id, _, second in pairs:
            rig.produce(BookClassRequested.new(correlation_id=second, booking_id=second, member_id=rig.member,
                                               class_id=class_id))

        def rejected() -> dict:
            return {e.booking_id: e.event_id for e in rig.facts.of("ReservationRejected")}

        wait_for(lambda: seconds <= set(rejected()), 60, "each second booking to find its class full",
                 seen=lambda: (rejected(), rig.seen()))
        first_run = {e.event_id for e in rig.facts.of("InstrumentConsumeRequested")}, rejected()
        assert {r.reason.value for r in rig.facts.of("ReservationRejected")} == {"CLASS_FULL"}
        assert not [e for e in seats.refresh() if getattr(e, "booking_id", None) in firsts | seconds], \
            "every hold was handed over in process (nothing on the seats topics): the test would prove nothing"

        rig.crash_and_replay()
        assert asked() == firsts, f"the seat went to another booking on the replay: asked for {asked()}"
        assert {e.event_id for e in rig.facts.of("InstrumentConsumeRequested")} == first_run[0], \
            "the replay asks again with the same event ids, nothing more"
        assert rejected() == first_run[1], "the same rejections, and no first booking rejected"
    finally:
        seats.close()
