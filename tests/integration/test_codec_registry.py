"""The codec against the real registry: interoperability with confluent-kafka's Avro serdes."""

from __future__ import annotations

import json
import subprocess
import sys

from confluent_kafka.schema_registry import topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from opengym_streams.codec import AvroCodec, registry_client
from opengym_streams.contracts import load_contracts
from opengym_streams.kafka import consumer, producer
from opengym.models import BookClassRequested, ReservationConfirmed
from tests.conftest import wait_for
from opengym.topics import RESERVATION_COMMANDS, RESERVATION_EVENTS, topic_name


def read_all(topic: str, expected: int, timeout: float = 30.0):
    client = consumer(f"test-reader-{topic}")
    client.subscribe([topic])
    messages = []
    try:
        def got_enough():
            msg = client.poll(0.5)
            if msg is not None and not msg.error():
                messages.append(msg)
            return len(messages) >= expected

        wait_for(got_enough, timeout, f"{expected} messages on {topic}", interval=0,
                 seen=lambda: f"{len(messages)} messages")
    finally:
        client.close()
    return messages


def test_an_event_from_confluent_avro_serializer_decodes_with_our_codec(topic_prefix, unique):
    topic = topic_name(RESERVATION_EVENTS)
    contract = load_contracts().get("ReservationConfirmed")
    serializer = AvroSerializer(
        registry_client(), contract.schema_str,
        conf={"subject.name.strategy": topic_record_subject_name_strategy, "auto.register.schemas": True},
    )
    booking_id = unique("booking")
    record = {"event_id": unique("evt"), "correlation_id": booking_id, "causation_id": None,
              "occurred_at": 1_790_000_000_000, "booking_id": booking_id, "member_id": "m-1", "class_id": "c-1",
              "gym_id": "gym-a", "home_gym_id": None, "instrument_id": "i-1", "instrument_kind": "CLASS_PACK",
              "starts_at": None}
    value = serializer(record, SerializationContext(topic, MessageField.VALUE))
    client = producer()
    client.produce(topic, key=booking_id, value=value)
    assert client.flush(30) == 0

    [message] = read_all(topic, 1)
    event = AvroCodec().decode(message.value())
    assert isinstance(event, ReservationConfirmed)
    assert event.booking_id == booking_id and event.instrument_kind.value == "CLASS_PACK"
    assert event.occurred_at == 1_790_000_000_000


def test_an_event_from_opengym_produce_decodes_with_confluent_avro_deserializer(topic_prefix, unique):
    booking_id = unique("booking")
    line = json.dumps({"type": "BookClassRequested", "booking_id": booking_id, "member_id": "m-7",
                       "class_id": "c-7"})
    result = subprocess.run([sys.executable, "-m", "opengym_streams.cli", "produce", line],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    topic = topic_name(RESERVATION_COMMANDS)
    [message] = read_all(topic, 1)
    assert message.key() == booking_id.encode()
    record = AvroDeserializer(registry_client())(message.value(), SerializationContext(topic, MessageField.VALUE))
    assert record["booking_id"] == booking_id
    assert record["correlation_id"] == booking_id, "correlation_id defaults to the booking id"
    assert record["member_id"] == "m-7" and record["event_id"]
    subject = f"{topic}-{BookClassRequested.avro_name}"
    # Looked up by name: the subject list is no proof either way, Apicurio's Confluent API lists at
    # most 1,000 subjects (a registry that ran many benchmarks holds more).
    assert registry_client().get_latest_version(subject).subject == subject


def test_schema_ids_resolve_to_the_same_schema_through_the_registry(stack, unique):
    codec = AvroCodec()
    topic = f"test.ids.{unique('t')}"
    event = BookClassRequested.new(correlation_id="b", booking_id="b", member_id="m", class_id="c")
    first = codec.encode(event, topic)
    again = AvroCodec().encode(event, topic)
    assert first[:5] == again[:5], "registering the same schema twice must give the same id"
    assert AvroCodec().decode(first) == event
