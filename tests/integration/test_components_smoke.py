"""Reservation and Entitlement as real `opengym worker` processes: one booking confirmed, one rejected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, TopicPartition

from opengym import topics
from opengym_streams.tables import partition_of
from opengym_streams.codec import AvroCodec, DecodeError
from opengym_streams.event import now_ms
from opengym_streams.kafka import consumer, producer
from opengym.models import BookClassRequested, InstrumentGrantRequested, ScheduleClassRequested
from tests.conftest import wait_for
from opengym.topics import topic_name

REPO = Path(__file__).resolve().parents[2]


class Facts:
    """Everything on some topics, decoded, read from the start; refreshed on demand."""

    def __init__(self, codec: AvroCodec, *watched: topics.Topic):
        self.codec = codec
        self.client = consumer(f"components-smoke-{uuid.uuid4().hex[:8]}")
        self.client.assign([TopicPartition(topic_name(t), p, 0) for t in watched for p in range(t.partitions)])
        self.events: list = []

    def refresh(self) -> list:
        while (msg := self.client.poll(0.1)) is not None:
            if msg.error():
                continue
            try:
                self.events.append(self.codec.decode(msg.value()))
            except DecodeError as exc:
                self.events.append(exc)
        return self.events

    def of(self, type_name: str, **fields) -> list:
        self.refresh()
        return [e for e in self.events if getattr(e, "type_name", None) == type_name
                and all(getattr(e, k) == v for k, v in fields.items())]

    def close(self):
        self.client.close()


class Workers:
    """`opengym worker` processes started by this test (and only those are stopped)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.env = {**os.environ, "OPENGYM_METRICS_PORT": "0", "OPENGYM_TICK_INTERVAL": "0.2",
                    "OPENGYM_BOOKING_TIMEOUT_MS": "60000", "OPENGYM_HOME": str(log_dir)}
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, component: str, instance: str = "") -> None:
        name = f"{component}-{instance}" if instance else component
        log = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [str(Path(sys.executable).with_name("opengym")), "worker", component],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, component: str) -> None:
        proc = self.procs.pop(component)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(topic_prefix, tmp_path):
    running = Workers(tmp_path)
    running.start("reservation")
    running.start("entitlement")
    yield running
    running.stop_all()
    _delete_topics(topic_prefix)


def _delete_topics(prefix: str) -> None:
    """The broker is shared and slows down with thousands of topics: leave none of ours behind."""
    from opengym_streams.kafka import admin

    client = admin()
    ours = [name for name in client.list_topics(timeout=10).topics if name.startswith(prefix)]
    for future in client.delete_topics(ours, operation_timeout=30).values():
        future.result()


@pytest.fixture
def codec():
    return AvroCodec()


@pytest.fixture
def produce(codec):
    send = producer(partitioner="murmur2_random")

    def produce(event, raw: bytes | None = None):
        topic = topic_name(topics.topic_for_event(event.avro_name)) if event is not None else \
            topic_name(topics.RESERVATION_COMMANDS)
        value = raw if raw is not None else codec.encode(event, topic)
        send.produce(topic, key=event.correlation_id.encode() if event is not None else b"smoke", value=value)
        send.flush(10)

    return produce


def seed(produce, facts, unique, workers, capacity=1):
    class_id, member = unique("class"), unique("member")
    produce(ScheduleClassRequested.new(correlation_id=class_id, class_id=class_id, gym_id="gym-a",
                                       capacity=capacity, starts_at=now_ms() + 3_600_000))
    produce(InstrumentGrantRequested.new(correlation_id=member, instrument_id=unique("pack"), member_id=member,
                                         home_gym_id="gym-b", kind="CLASS_PACK", credits=5))
    wait_for(lambda: facts.of("ClassScheduled", class_id=class_id) and facts.of("InstrumentGranted", member_id=member),
             45, "both workers to start and answer the schedule and the grant",
             seen=lambda: [type(e).__name__ for e in facts.events] + [_tail(workers.log_dir)])
    return class_id, member


def book(produce, booking_id, member, class_id):
    request = BookClassRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member,
                                     class_id=class_id)
    produce(request)
    return request


def test_one_booking_is_confirmed_and_one_on_a_full_class_is_rejected(workers, unique, codec, produce):
    facts = Facts(codec, topics.RESERVATION_EVENTS, topics.ENTITLEMENT_EVENTS, topics.DEAD_LETTERS["reservation"])
    try:
        class_id, member = seed(produce, facts, unique, workers)
        first, second = unique("booking"), unique("booking")
        book(produce, first, member, class_id)
        confirmed = wait_for(lambda: facts.of("ReservationConfirmed", booking_id=first), 20,
                             f"ReservationConfirmed for {first}", seen=lambda: facts.of("ReservationRejected"))
        assert (confirmed[0].gym_id, confirmed[0].home_gym_id) == ("gym-a", "gym-b")

        book(produce, second, member, class_id)
        rejected = wait_for(lambda: facts.of("ReservationRejected", booking_id=second), 20,
                            f"ReservationRejected for {second}")
        assert rejected[0].reason.value == "CLASS_FULL"

        produce(None, raw=b"not an event")
        letters = wait_for(lambda: facts.of("DeadLetter", component="reservation"), 20, "a dead letter")
        assert letters[0].error_kind == "NOT_FRAMED"
        consumed = facts.of("InstrumentConsumed", member_id=member)
        assert [c.booking_id for c in consumed] == [first], "exactly one credit taken, for the confirmed booking"
        assert facts.of("ReservationConfirmed", booking_id=second) == []
    finally:
        facts.close()


def test_reservation_killed_with_sigkill_resumes_from_its_changelog(workers, unique, codec, produce):
    facts = Facts(codec, topics.RESERVATION_EVENTS, topics.ENTITLEMENT_EVENTS)
    try:
        class_id, member = seed(produce, facts, unique, workers)
        first, second = unique("booking"), unique("booking")
        request = book(produce, first, member, class_id)
        wait_for(lambda: facts.of("ReservationConfirmed", booking_id=first), 20, f"ReservationConfirmed for {first}")

        workers.kill("reservation")
        workers.start("reservation")
        produce(request)  # redelivered after the restart: the recovered state must dedupe it
        book(produce, second, member, class_id)
        rejected = wait_for(lambda: facts.of("ReservationRejected", booking_id=second), 60,
                            f"ReservationRejected for {second} after the restart",
                            seen=lambda: _tail(workers.log_dir))
        assert rejected[0].reason.value == "CLASS_FULL", "the recovered seat keeper still counts the first seat"
        # Redelivered after the replay, perhaps (at-least-once), but one event each: the same ids.
        confirmations = {e.event_id for e in facts.of("ReservationConfirmed", booking_id=first)}
        assert len(confirmations) == 1, f"one confirmation for {first}: {confirmations}"
        consumed = {e.event_id for e in facts.of("InstrumentConsumed", member_id=member)}
        assert len(consumed) == 1, f"one credit taken: {consumed}"
    finally:
        facts.close()


def test_two_reservation_workers_share_the_partitions_and_never_overbook_a_class(workers, unique, codec, produce,
                                                                                topic_prefix):
    """The class's seats live with one worker: its own bookings' holds are handed over in process, the
    other worker's go through the seats topic. Both paths together still hold five seats, no more."""
    workers.start("reservation", instance="second")
    group = f"{topic_prefix}opengym-reservation"
    wait_for(lambda: _members_with_partitions(group) == 2, 60, f"two members of {group} with partitions",
             seen=lambda: _members_with_partitions(group))
    facts = Facts(codec, topics.RESERVATION_EVENTS, topics.ENTITLEMENT_EVENTS, topics.RESERVATION_SEATS)
    try:
        class_id, member = seed(produce, facts, unique, workers, capacity=5)
        others = [unique("member") for _ in range(7)]
        for other in others:
            produce(InstrumentGrantRequested.new(correlation_id=other, instrument_id=unique("pack"), member_id=other,
                                                 home_gym_id="gym-b", kind="CLASS_PACK", credits=1))
        wait_for(lambda: len(facts.of("InstrumentGranted")) == 8, 30, "eight grants")
        bookings = _covering_every_partition(unique, 12, topics.RESERVATION_COMMANDS.partitions)
        for booking_id, who in zip(bookings, [member] * 5 + others):
            book(produce, booking_id, who, class_id)

        def terminals():
            return [e for e in facts.of("ReservationConfirmed") + facts.of("ReservationRejected")
                    if e.booking_id in bookings]
        wait_for(lambda: len(terminals()) == 12, 60, "12 terminal events", seen=lambda: len(terminals()))
        partitions = {partition_of(b) for b in bookings}
        assert len(partitions) > 1, "the bookings should span partitions owned by both workers"
        outcomes = sorted(e.type_name + ("" if e.type_name == "ReservationConfirmed" else f":{e.reason.value}")
                          for e in terminals())
        assert outcomes == ["ReservationConfirmed"] * 5 + ["ReservationRejected:CLASS_FULL"] * 7
        assert len({e.booking_id for e in terminals()}) == 12, "exactly one terminal event per booking"
        through_kafka = {e.booking_id for e in facts.of("SeatHoldRequested") if e.booking_id in bookings}
        assert 0 < len(through_kafka) < 12, (
            f"{len(through_kafka)} of 12 holds went through the seats topic: the bookings on the partitions of "
            "the worker holding the class's seats are handed over in process, the others' are not")
    finally:
        facts.close()


def _covering_every_partition(unique, count: int, partitions: int) -> list[str]:
    """``count`` booking ids with at least one on every partition (so on both workers' partitions)."""
    chosen: list[str] = []
    missing = set(range(partitions))
    while missing or len(chosen) < count:
        candidate = unique("booking")
        partition = partition_of(candidate, partitions)
        if partition in missing or (not missing and len(chosen) < count):
            chosen.append(candidate)
            missing.discard(partition)
        if len(chosen) > count:
            raise AssertionError("more partitions than bookings")
    return chosen


def _members_with_partitions(group: str) -> int:
    from opengym_streams.kafka import admin

    client = admin()  # keep a reference: a collected AdminClient never completes its futures
    try:
        description = client.describe_consumer_groups([group])[group].result(10)
    except KafkaException:  # the group does not exist yet
        return 0
    return sum(1 for member in description.members
               if member.assignment and any(tp.topic.endswith("reservation.commands")
                                            for tp in member.assignment.topic_partitions))


def _tail(log_dir: Path) -> str:
    return " | ".join(f"{p.name}: {p.read_text(errors='replace')[-400:]}" for p in sorted(log_dir.glob("*.log")))
