"""Dead letters as an operator sees them: decoded where they decode, chosen by filters, redriven once
(twice changes nothing), and a redriven message that fails again shows its history."""

from __future__ import annotations

import json

from opengym_streams.deadletters import Book, redrive, redrive_event_id, select
from opengym_streams.models import DeadLetter
from opengym.models import NotificationSent


def decode(payload: bytes):
    data = json.loads(payload)
    if data.get("broken"):
        raise ValueError("does not decode")
    return NotificationSent(**data)


def sent(cid: str = "b-1") -> bytes:
    return json.dumps({"event_id": f"e-{cid}", "correlation_id": cid, "occurred_at": 1, "booking_id": cid,
                       "member_id": "m-1", "channel": "EMAIL", "template": "t"}).encode()


def letter(offset: int, source_offset: int, payload: bytes, component="notifications", kind="HANDLER_ERROR",
           at=1000, cid="b-1") -> DeadLetter:
    return DeadLetter(event_id=f"dl-{component}-{offset}", correlation_id=cid, occurred_at=at, component=component,
                      source_topic="t.opengym.notifications.events", source_partition=2, source_offset=source_offset,
                      error_kind=kind, reason=f"{kind}: boom", key=cid.encode(), payload=payload)


class Message:
    def __init__(self, topic, partition, offset):
        self._t, self._p, self._o = topic, partition, offset

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o


class RecordingProducer:
    """Stands in for confluent-kafka's Producer: records what was produced, reports each delivered."""

    def __init__(self):
        self.produced: list[tuple[str, bytes, bytes]] = []
        self._pending = []
        self.next_offset = 100

    def produce(self, topic, key=None, value=None, headers=None, on_delivery=None):
        self.produced.append((topic, key, value))
        self._pending.append((on_delivery, Message(topic, 2, self.next_offset)))
        self.next_offset += 1

    def flush(self, timeout=None):
        for callback, msg in self._pending:
            callback(None, msg)
        self._pending = []
        return 0


def book_with(*letters: DeadLetter) -> Book:
    book = Book(decode)
    for i, d in enumerate(letters):
        book.add_letter(d, "t.opengym.notifications.dlq", 0, i)
    return book


def test_a_dead_letter_shows_its_decoded_payload_or_why_it_does_not_decode():
    book = book_with(letter(0, 5, sent()), letter(1, 6, b'{"broken": true}', kind="UNDECODABLE"))
    by_offset = {e.offset: e.summary() for e in book.all()}
    assert by_offset[0]["payload"]["type"] == "NotificationSent"
    assert by_offset[1]["payload"] is None and "does not decode" in by_offset[1]["payload_error"]


def test_filters_choose_by_component_kind_reason_time_and_offset():
    book = book_with(letter(0, 5, sent(), at=1000), letter(1, 6, sent("b-2"), kind="CONTRACT_VIOLATION", at=2000, cid="b-2"))
    everything = book.all()
    assert [e.offset for e in select(everything, error_kind="CONTRACT_VIOLATION")] == [1]
    assert [e.offset for e in select(everything, since=1500)] == [1]
    assert [e.offset for e in select(everything, until=1500)] == [0]
    assert [e.offset for e in select(everything, reason="handler_error")] == [0]
    assert [e.offset for e in select(everything, offsets=[("t.opengym.notifications.dlq", 0, 1)])] == [1]
    assert select(everything, component="finance") == []


def test_redrive_republishes_the_original_bytes_and_records_it_once():
    book = book_with(letter(0, 5, sent()))
    producer = RecordingProducer()
    encode = lambda event, topic: json.dumps(event.to_json_dict()).encode()  # noqa: E731
    topics = {"notifications": "t.opengym.notifications.redrives"}
    first = redrive(book.all(), book=book, producer=producer, encode=encode, redrive_topics=topics, redriven_by="test")
    assert [e.id for e in first.sent] == ["dl-notifications-0"]
    (topic, key, value), (record_topic, _, record) = producer.produced
    assert (topic, key, value) == ("t.opengym.notifications.events", b"b-1", sent())
    assert record_topic == "t.opengym.notifications.redrives"
    assert json.loads(record)["event_id"] == redrive_event_id("dl-notifications-0")
    again = redrive(book.all(), book=book, producer=producer, encode=encode, redrive_topics=topics, redriven_by="test")
    assert again.sent == [] and [e.id for e in again.already] == ["dl-notifications-0"]
    assert len(producer.produced) == 2, "redriving twice sends nothing the second time"


def test_a_redriven_message_that_fails_again_carries_its_history():
    book = book_with(letter(0, 5, sent()))
    producer = RecordingProducer()
    encode = lambda event, topic: b"x"  # noqa: E731
    redrive(book.all(), book=book, producer=producer, encode=encode,
            redrive_topics={"notifications": "r"}, redriven_by="test")
    # The component dead-letters the re-published message (offset 100 on its source topic) again.
    book.add_letter(letter(1, 100, sent(), at=5000), "t.opengym.notifications.dlq", 0, 1)
    newest = book.all()[0]
    assert newest.offset == 1 and [h.id for h in newest.history] == ["dl-notifications-0"]
    assert newest.redriven is None, "the new dead letter can be redriven once the fix is in"
