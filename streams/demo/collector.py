"""Reads every fact topic (and the driver's own requests) into :class:`Facts`, as it arrives."""

from __future__ import annotations

import uuid
from collections import Counter

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

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
        for topic in topics:
            name = topic_name(topic)
            if name not in metadata:
                raise RuntimeError(f"topic {name} does not exist; create the topics first")
            for partition in metadata[name].partitions:
                offset = (start or {}).get((name, partition), OFFSET_BEGINNING)
                assignment.append(TopicPartition(name, partition, offset))
        self._client.assign(assignment)

    def poll(self, timeout: float = 0.2, max_messages: int = 2000) -> int:
        """Read what has arrived (waiting up to ``timeout`` for the first message); return how many
        messages were read."""
        messages = self._client.consume(num_messages=max_messages, timeout=timeout)
        for msg in messages:
            if msg.error():
                continue
            try:
                event = self.codec.decode(msg.value())
            except DecodeError:
                self.undecodable[msg.topic()] += 1
                continue
            if event.type_name in IGNORED_TYPES:
                continue
            self.facts.add(event)
        return len(messages)

    def drain(self, quiet_polls: int = 2, timeout: float = 0.2) -> int:
        """Poll until ``quiet_polls`` polls in a row bring nothing new."""
        total, quiet = 0, 0
        while quiet < quiet_polls:
            got = self.poll(timeout)
            total += got
            quiet = 0 if got else quiet + 1
        return total

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "FactCollector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
