"""Topics created by ``opengym_streams.kafka.create_topics`` take writes the moment it returns: the broker already
leads every new partition, so no produce request to them is refused (a refused first request is how an
idempotent producer lost records, docs/notes/observer.md)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from opengym import topics
from opengym_streams.kafka import admin, create_topics, delete_topics_with_prefix
from opengym.topics import topic_name


@pytest.fixture
def fresh_prefix(stack, monkeypatch):
    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
    yield prefix
    delete_topics_with_prefix(prefix)


def test_every_new_partition_is_led_by_the_broker_when_create_topics_returns(fresh_prefix):
    created = create_topics()
    assert set(created.values()) == {"created"}
    client = admin()
    partitions = [TopicPartition(topic_name(t), p) for t in topics.ALL_TOPICS for p in range(t.partitions)]
    refused = []
    for tp, future in client.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10).items():
        try:
            future.result()
        except KafkaException as exc:
            refused.append((tp.topic, tp.partition, exc.args[0].name()))
    assert refused == [], f"{len(refused)} of {len(partitions)} new partitions not led yet: {refused[:5]}"
