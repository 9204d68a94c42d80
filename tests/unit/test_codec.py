"""The codec against confluent-kafka's in-memory mock registry (pure logic; the real registry is in
tests/integration/test_codec_registry.py)."""

import struct

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from opengym_streams.codec import AvroCodec, DecodeError, build_event, subject_name
from opengym.models import BookClassRequested, ReservationRejected, RejectionReason


@pytest.fixture
def registry():
    return SchemaRegistryClient.new_client({"url": "mock://codec-unit"})


@pytest.fixture
def codec(registry):
    return AvroCodec(registry=registry)


def booking(**overrides):
    fields = dict(correlation_id="b-1", booking_id="b-1", member_id="m-1", class_id="c-1")
    fields.update(overrides)
    return BookClassRequested.new(**fields)


def test_round_trip_gives_back_the_same_event(codec):
    event = booking()
    assert codec.decode(codec.encode(event, "opengym.reservation.commands")) == event


def test_enums_and_nullable_fields_round_trip(codec):
    event = ReservationRejected.new(correlation_id="b-2", booking_id="b-2", member_id="m", class_id="c",
                                    reason=RejectionReason.CLASS_FULL)
    decoded = codec.decode(codec.encode(event, "opengym.reservation.events"))
    assert decoded.reason is RejectionReason.CLASS_FULL
    assert decoded.causation_id is None


def test_payload_is_confluent_framed_under_the_topic_record_subject(codec, registry):
    payload = codec.encode(booking(), "opengym.reservation.commands")
    magic, schema_id = struct.unpack(">bI", payload[:5])
    assert magic == 0
    registered = registry.get_latest_version(
        subject_name("opengym.reservation.commands", "opengym.reservation.BookClassRequested"))
    assert registered.schema_id == schema_id


def test_schema_ids_are_cached_per_topic_and_record(codec, registry, monkeypatch):
    codec.encode(booking(), "opengym.reservation.commands")
    calls = []
    monkeypatch.setattr(registry, "register_schema", lambda *a, **k: calls.append(a))
    codec.encode(booking(booking_id="b-9", correlation_id="b-9"), "opengym.reservation.commands")
    assert calls == []


@pytest.mark.parametrize(
    "payload, kind",
    [
        (b"", DecodeError.NOT_FRAMED),
        (b"\x00\x00", DecodeError.NOT_FRAMED),
        (b"hello world, not avro", DecodeError.NOT_FRAMED),
        (b"\x00\x00\x01\x86\xa0" + b"\x02ab", DecodeError.UNKNOWN_SCHEMA_ID),
    ],
)
def test_bad_payloads_raise_one_typed_error(codec, payload, kind):
    with pytest.raises(DecodeError) as excinfo:
        codec.decode(payload)
    assert excinfo.value.kind == kind
    assert excinfo.value.reason


def test_a_truncated_body_is_undecodable(codec):
    payload = codec.encode(booking(), "opengym.reservation.commands")
    with pytest.raises(DecodeError) as excinfo:
        codec.decode(payload[:12])
    assert excinfo.value.kind == DecodeError.UNDECODABLE


def test_trailing_bytes_are_undecodable(codec):
    payload = codec.encode(booking(), "opengym.reservation.commands")
    with pytest.raises(DecodeError) as excinfo:
        codec.decode(payload + b"\x00\x01")
    assert excinfo.value.kind == DecodeError.UNDECODABLE
    assert "trailing" in excinfo.value.reason


def test_a_record_we_have_no_contract_for_is_unknown(codec, registry):
    foreign = '{"type":"record","name":"Foreign","namespace":"elsewhere","fields":[{"name":"x","type":"int"}]}'
    schema_id = registry.register_schema("t-elsewhere.Foreign", Schema(foreign, "AVRO"))
    with pytest.raises(DecodeError) as excinfo:
        codec.decode(struct.pack(">bI", 0, schema_id) + b"\x02")
    assert excinfo.value.kind == DecodeError.UNKNOWN_RECORD
    assert "elsewhere.Foreign" in excinfo.value.reason


def test_an_empty_correlation_id_violates_the_contract(codec):
    payload = codec.encode(booking(correlation_id=""), "opengym.reservation.commands")
    with pytest.raises(DecodeError) as excinfo:
        codec.decode(payload)
    assert excinfo.value.kind == DecodeError.CONTRACT_VIOLATION


def test_build_event_reports_the_field_and_the_reason():
    with pytest.raises(ValueError, match=r"BookClassRequested: member_id: Field required"):
        build_event({"type": "BookClassRequested", "correlation_id": "b", "booking_id": "b", "class_id": "c"})
    with pytest.raises(ValueError, match=r"capacity: Input should be a valid integer.*'ten'"):
        build_event({"type": "ScheduleClassRequested", "correlation_id": "c", "class_id": "c", "gym_id": "g",
                     "capacity": "ten", "starts_at": 1})
    with pytest.raises(ValueError, match=r"type: unknown event 'Nope'"):
        build_event({"type": "Nope"})
    with pytest.raises(ValueError, match=r"colour: Extra inputs are not permitted"):
        build_event({"type": "CheckInRequested", "correlation_id": "b", "booking_id": "b", "member_id": "m",
                     "colour": "red"})


def test_build_event_fills_in_event_id_and_occurred_at():
    event = build_event({"type": "opengym.reservation.BookClassRequested", "correlation_id": "b",
                         "booking_id": "b", "member_id": "m", "class_id": "c"})
    assert event.event_id and event.occurred_at > 0


def test_the_codec_says_when_a_registry_call_is_needed(codec):
    topic = "opengym.reservation.commands"
    assert not codec.can_encode_offline(topic, BookClassRequested.avro_name)
    payload = codec.encode(booking(), topic)
    assert codec.can_encode_offline(topic, BookClassRequested.avro_name)
    assert not codec.can_decode_offline(payload), "encoding caches the id, not the reader"
    codec.decode(payload)
    assert codec.can_decode_offline(payload)
    assert not codec.can_decode_offline(b"\x00\x00")
