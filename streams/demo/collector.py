"""Reads every fact topic (and the driver's own requests) into :class:`Facts`, as it arrives."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from confluent_kafka import TopicPartition

from streams.codec import AvroCodec, DecodeError
from streams.demo.facts import Facts
from streams.kafka import consumer
from topics import ALL_TOPICS, CLOCK, Topic, topic_name

IGNORED_TYPES = frozenset({"ClockTicked"})

OBSERVED_TOPICS: tuple[Topic, ...] = tuple(t for t in ALL_TOPICS if t.kind not in ("anomalies", "internal")
                                           and t.events != (CLOCK,))
"""Commands and requests (for the requests' own timestamps), every owner's facts, every dead-letter topic."""


def end_offsets(topics: tuple[Topic, ...] = OBSERVED_TOPICS, timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """The current end of every partition: a run that starts reading here sees only its own events."""
    client = consumer(f"opengym-demo-offsets-{uuid.uuid4()}")
    try:
        ends = {}
        names = [topic_name(t) for t in topics]
        metadata = client.list_topics(timeout=timeout).topics
        for name in names:
            if name not in metadata:
                continue
            for partition in metadata[name].partitions:
                ends[(name, partition)] = client.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=timeout)[1]
        return ends
    finally:
        client.close()


class FactCollector:
    """A consumer of every observed topic from given offsets (default: the beginning) into ``facts``."""

    def __init__(self, start: dict[tuple[str, int], int] | None = None,
                 topics: tuple[Topic, ...] = OBSERVED_TOPICS, codec: AvroCodec | None = None):
        self.facts = Facts()
        self.undecodable: Counter = Counter()
        """topic -> messages that did not decode (garbage produced on purpose, for example)."""
        self.codec = codec or AvroCodec(auto_register=False)
        self._client = consumer(f"opengym-demo-collector-{uuid.uuid4()}")
        metadata = self._client.list_topics(timeout=10).topics
        assignment = []
        self._positions: dict[tuple[str, int], int] = {}
        for topic in topics:
            name = topic_name(topic)
            if name not in metadata:
                raise RuntimeError(f"topic {name} does not exist; create the topics first")
            for partition in metadata[name].partitions:
                offset = (start or {}).get((name, partition))
                if offset is None:
                    offset = self._client.get_watermark_offsets(TopicPartition(name, partition), timeout=10)[0]
                self._positions[(name, partition)] = offset
                assignment.append(TopicPartition(name, partition, offset))
        self._client.assign(assignment)

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
        return sum(max(0, self._client.get_watermark_offsets(TopicPartition(name, partition), timeout=10)[1] - at)
                   for (name, partition), at in self._positions.items())

    def drain(self, timeout: float = 30.0) -> None:
        """Read up to the end of every partition as it is now (clock ticks keep topics growing, so
        "until quiet" would never end)."""
        ends = {key: self._client.get_watermark_offsets(TopicPartition(*key), timeout=10)[1]
                for key in self._positions}
        deadline = time.monotonic() + timeout
        while any(self._positions[key] < end for key, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"collector still {self.behind()} messages behind after {timeout:.0f}s")
            self.poll(0.2)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "FactCollector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
