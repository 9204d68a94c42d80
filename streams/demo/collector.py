"""Reads every fact topic (and the driver's own requests) into :class:`Facts`, as it arrives."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from confluent_kafka import TopicPartition

from opengym_streams.codec import AvroCodec, DecodeError
from opengym_streams.demo.facts import Facts
from opengym_streams.kafka import consumer
from opengym_streams.system import System, load
from opengym_streams.topic import CLOCK, Topic, topic_name

IGNORED_TYPES = frozenset({"ClockTicked"})


def observed_topics(system: System | None = None) -> tuple[Topic, ...]:
    """Every topic of the system the demo watches: facts and dead letters (no internal or clock topics).

    Commands and requests (for the requests' own timestamps), every owner's facts, the observer's
    anomalies, every dead-letter topic."""
    return tuple(t for t in (system or load()).topics.all if t.kind != "internal" and t.events != (CLOCK,))


def partition_offsets(topics: tuple[Topic, ...] | None = None, latest: bool = True,
                      timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """The end (or start) offset of every partition of ``topics``, in one batch request (asking a
    consumer partition by partition took seconds per partition once it had an assignment)."""
    from confluent_kafka.admin import OffsetSpec

    from opengym_streams.kafka import admin

    client = admin()
    names = [topic_name(t) for t in (topics if topics is not None else observed_topics())]
    metadata = client.list_topics(timeout=timeout).topics
    spec = OffsetSpec.latest() if latest else OffsetSpec.earliest()
    wanted = {TopicPartition(name, p): spec for name in names if name in metadata
              for p in metadata[name].partitions}
    if not wanted:
        return {}
    futures = client.list_offsets(wanted, request_timeout=timeout)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def end_offsets(topics: tuple[Topic, ...] | None = None, timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """The current end of every partition: a run that starts reading here sees only its own events."""
    return partition_offsets(topics, latest=True, timeout=timeout)


class FactCollector:
    """A consumer of every observed topic from given offsets (default: the beginning) into ``facts``
    (a :class:`Facts`, or the system's own kind of it)."""

    def __init__(self, start: dict[tuple[str, int], int] | None = None,
                 topics: tuple[Topic, ...] | None = None, codec: AvroCodec | None = None,
                 facts: Facts | None = None):
        self.facts = facts if facts is not None else Facts()
        self.undecodable: Counter = Counter()
        """topic -> messages that did not decode (garbage produced on purpose, for example)."""
        self.codec = codec or AvroCodec(auto_register=False)
        self._client = consumer(f"opengym-demo-collector-{uuid.uuid4()}")
        topics = topics if topics is not None else observed_topics()
        self._topics = topics
        metadata = self._client.list_topics(timeout=10).topics
        missing = [topic_name(t) for t in topics if topic_name(t) not in metadata]
        if missing:
            raise RuntimeError(f"topics {', '.join(missing)} do not exist; create the topics first")
        earliest = partition_offsets(topics, latest=False)
        self._positions: dict[tuple[str, int], int] = {
            key: max(offset, (start or {}).get(key, offset)) for key, offset in earliest.items()}
        self._client.assign([TopicPartition(name, partition, offset)
                             for (name, partition), offset in self._positions.items()])

    def poll(self, timeout: float = 0.2, max_messages: int = 2000) -> int:
        """Read what has arrived (waiting up to ``timeout`` for the first message); return how many
        messages were read."""
        messages = self._client.consume(num_messages=max_messages, timeout=timeout)
        for msg in messages:
            if msg.error():
                continue
            self._positions[(msg.topic(), msg.partition())] = msg.offset() + 1
            try:
                event = self.codec.decode(msg.value())
            except DecodeError:
                self.undecodable[msg.topic()] += 1
                continue
            if event.type_name in IGNORED_TYPES:
                continue
            self.facts.add(event)
        return len(messages)

    def behind(self) -> int:
        """Messages produced to the observed topics that this collector has not read yet."""
        ends = partition_offsets(self._topics)
        return sum(max(0, end - self._positions.get(key, end)) for key, end in ends.items())

    def drain(self, timeout: float = 30.0) -> None:
        """Read up to the end of every partition as it is now (clock ticks keep topics growing, so
        "until quiet" would never end)."""
        ends = partition_offsets(self._topics)
        deadline = time.monotonic() + timeout
        while any(self._positions.get(key, end) < end for key, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"collector still {self.behind()} messages behind after {timeout:.0f}s")
            self.poll(0.2)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "FactCollector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
