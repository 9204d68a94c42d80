"""aiokafka's producer metadata against the real broker: a send is never stranded without a leader
(streams.tuning.track_sent_topics; the lost first fact of docs/notes/security.md)."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import NewTopic

from opengym_streams import tuning
from opengym_streams.kafka import admin
from opengym_streams.settings import get_settings


def test_a_send_to_a_topic_learnt_from_an_all_topics_fetch_survives_a_send_to_a_newer_topic(stack):
    tuning.apply()
    known, newer = (f"test.metadata.{uuid.uuid4().hex[:8]}.{n}" for n in ("known", "newer"))
    client = admin()
    for future in client.create_topics([NewTopic(known, 1, 1)]).values():
        future.result(30)

    async def scenario() -> tuple[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=get_settings().bootstrap, linger_ms=200)
        await producer.start()
        try:
            await producer.client.force_metadata_update()  # all topics, as Faust does after creating one
            for future in client.create_topics([NewTopic(newer, 1, 1)]).values():
                future.result(30)
            first = await producer.send(known, b"lingering")   # in the map, not tracked
            second = await producer.send(newer, b"new")        # not in the map: tracking it narrows the map
            return (await asyncio.wait_for(second, 15)).offset, (await asyncio.wait_for(first, 15)).offset
        finally:
            await producer.stop()

    try:
        assert asyncio.run(scenario()) == (0, 0)
    finally:
        for future in client.delete_topics([known, newer]).values():
            try:
                future.result(30)
            except Exception:
                pass
