"""`opengym produce` and `opengym consume` against the real broker: bad input is reported, nothing
valid is lost."""

from __future__ import annotations

import json
import subprocess
import sys

from opengym_streams.kafka import producer
from opengym.topics import RESERVATION_COMMANDS, topic_name

OPENGYM = [sys.executable, "-m", "opengym_streams.cli"]


def opengym(*args, stdin=None):
    return subprocess.run(OPENGYM + list(args), input=stdin, capture_output=True, text=True, timeout=60)


def booking(booking_id, **extra):
    return json.dumps({"type": "BookClassRequested", "booking_id": booking_id, "member_id": "m-1",
                       "class_id": "c-1", **extra})


def consume_commands():
    result = opengym("consume", topic_name(RESERVATION_COMMANDS))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_bad_lines_are_reported_with_line_field_and_reason_and_valid_lines_are_sent(topic_prefix, unique):
    good = [unique("booking") for _ in range(3)]
    lines = [
        booking(good[0]),
        '{"type": "BookClassRequested", "booking_id": ',                       # malformed JSON
        json.dumps({"type": "BookClassRequested", "booking_id": "x", "class_id": "c"}),  # missing member_id
        booking(good[1]),
        json.dumps({"type": "ScheduleClassRequested", "class_id": "c", "gym_id": "g", "capacity": "ten",
                    "starts_at": 1}),                                          # wrong type
        json.dumps({"type": "BookTheMoon", "booking_id": "y"}),                # unknown event name
        booking(good[2]),
    ]
    result = opengym("produce", stdin="\n".join(lines) + "\n")
    assert result.returncode == 1, "invalid lines make the exit code non-zero"
    errors = result.stderr
    assert "line 2: malformed JSON" in errors
    assert "line 3: BookClassRequested: member_id: Field required" in errors
    assert "line 5: ScheduleClassRequested: capacity: Input should be a valid integer" in errors
    assert "line 6: type: unknown event 'BookTheMoon'" in errors
    assert "sent 3, rejected 4" in errors

    events, _ = consume_commands()
    assert sorted(e["booking_id"] for e in events) == sorted(good)
    assert all(e["type"] == "BookClassRequested" and e["event_id"] and e["occurred_at"] for e in events)


def test_produce_from_a_file_keeps_given_event_ids(topic_prefix, unique, tmp_path):
    booking_id = unique("booking")
    path = tmp_path / "events.jsonl"
    path.write_text(booking(booking_id, event_id="fixed-id-1", occurred_at=1_700_000_000_000) + "\n")
    result = opengym("produce", "--file", str(path))
    assert result.returncode == 0, result.stderr
    [event], _ = consume_commands()
    assert event["event_id"] == "fixed-id-1" and event["occurred_at"] == 1_700_000_000_000


def test_an_event_sent_to_a_topic_that_does_not_carry_it_is_refused(topic_prefix, unique):
    result = opengym("produce", "--topic", "opengym.finance.events", booking(unique("booking")))
    assert result.returncode == 1
    assert "does not carry BookClassRequested" in result.stderr


def test_a_garbage_payload_on_a_topic_is_reported_and_the_valid_events_around_it_still_print(
        topic_prefix, unique):
    first, last = unique("booking"), unique("booking")
    assert opengym("produce", booking(first)).returncode == 0
    raw = producer()
    raw.produce(topic_name(RESERVATION_COMMANDS), key=first.encode(), value=b"\xde\xad\xbe\xef garbage")
    assert raw.flush(30) == 0
    assert opengym("produce", booking(last)).returncode == 0

    events, errors = consume_commands()
    assert sorted(e["booking_id"] for e in events) == sorted([first, last])
    [report] = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    assert report["error"] == "NOT_FRAMED" and "magic byte" in report["reason"]
    assert "offset" in report and "partition" in report


def test_produce_partitions_by_correlation_id_like_java_and_faust(topic_prefix, unique):
    from aiokafka.partitioner import murmur2

    booking_ids = [unique("booking") for _ in range(8)]
    result = opengym("produce", stdin="\n".join(booking(b) for b in booking_ids) + "\n")
    assert result.returncode == 0, result.stderr
    consumed = opengym("consume", topic_name(RESERVATION_COMMANDS), "--meta")
    placed = {e["booking_id"]: e["_meta"]["partition"] for e in map(json.loads, consumed.stdout.splitlines())}
    expected = {b: (murmur2(b.encode()) & 0x7FFFFFFF) % RESERVATION_COMMANDS.partitions for b in booking_ids}
    assert placed == expected
