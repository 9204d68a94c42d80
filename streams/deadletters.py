"""Dead letters: read them, decode what they carry, and redrive them to the topic they came from.

A dead letter (``DeadLetter`` on ``<component>.dlq``) holds the original key and bytes of a message a
component could not take, and where it was read. Redriving re-publishes those bytes, unchanged, to that
topic (a fix must have been deployed for them to go through this time) and records a
``DeadLetterRedriven`` on the component's redrives topic, keyed like the dead letter, with an event id
derived from the dead letter's: a dead letter that has a record is never sent again, so redriving twice
changes nothing. The record also says at which offset the message was re-published; a dead letter whose
source is that offset is the same message failing again, and :class:`Letter.history` follows that chain.

Re-publish first, record second: a crash in between re-publishes once more on the next redrive, and a
decodable message then carries the same event id, which its consumer dedupes.

Used by ``opengym dlq`` and by the observer's UI; nothing here knows OpenGym (topics are handed in).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from opengym_streams.event import Event, now_ms
from opengym_streams.models import DeadLetter, DeadLetterRedriven

_REDRIVE_IDS = uuid.UUID("0c6f9a52-7e1d-4f0b-8d8e-5a41c2e7b3d9")


def redrive_event_id(dead_letter_id: str) -> str:
    return str(uuid.uuid5(_REDRIVE_IDS, dead_letter_id))


@dataclass
class Letter:
    """One dead letter as an operator sees it."""

    letter: DeadLetter
    topic: str
    partition: int
    offset: int
    payload: dict | None = None
    """The original message decoded (``{"type": ..., fields}``), when it decodes now."""
    payload_error: str | None = None
    redriven: DeadLetterRedriven | None = None
    history: list["Letter"] = field(default_factory=list)
    """Earlier dead letters of the same message (redriven, failed again), oldest first."""

    @property
    def id(self) -> str:
        return self.letter.event_id

    @property
    def component(self) -> str:
        return self.letter.component

    def summary(self) -> dict[str, Any]:
        d = self.letter
        return {
            "id": d.event_id, "component": d.component, "correlation_id": d.correlation_id,
            "dead_letter": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "at": d.occurred_at, "error_kind": d.error_kind, "reason": d.reason,
            "source": {"topic": d.source_topic, "partition": d.source_partition, "offset": d.source_offset},
            "key": d.key.decode(errors="replace") if d.key is not None else None,
            "payload": self.payload, "payload_error": self.payload_error,
            "payload_base64": base64.b64encode(d.payload).decode() if d.payload is not None else None,
            "redriven": None if self.redriven is None else {
                "at": self.redriven.occurred_at, "by": self.redriven.redriven_by,
                "to": {"topic": self.redriven.target_topic, "partition": self.redriven.target_partition,
                       "offset": self.redriven.target_offset}},
            "history": [h.id for h in self.history],
        }


class Book:
    """Every dead letter and redrive record read so far, indexed; fed message by message."""

    def __init__(self, decode: Callable[[bytes], Event]):
        self.decode = decode
        self.letters: dict[str, Letter] = {}
        self.redrives: dict[str, DeadLetterRedriven] = {}
        self._by_source: dict[tuple[str, int, int], str] = {}

    def add_letter(self, letter: DeadLetter, topic: str, partition: int, offset: int) -> Letter:
        entry = self.letters.get(letter.event_id)
        if entry is None:
            entry = Letter(letter, topic, partition, offset)
            try:
                entry.payload = self.decode(letter.payload).to_json_dict() if letter.payload is not None else None
                if letter.payload is None:
                    entry.payload_error = "no payload"
            except Exception as exc:  # a dead letter is often one because it does not decode
                entry.payload_error = f"{type(exc).__name__}: {exc}"
            self.letters[letter.event_id] = entry
            self._by_source[(letter.source_topic, letter.source_partition, letter.source_offset)] = letter.event_id
        entry.redriven = self.redrives.get(letter.event_id)
        return entry

    def add_redrive(self, record: DeadLetterRedriven) -> None:
        dead_letter_id = record.causation_id or ""
        self.redrives.setdefault(dead_letter_id, record)
        if dead_letter_id in self.letters:
            self.letters[dead_letter_id].redriven = self.redrives[dead_letter_id]

    def add(self, event: Event, topic: str, partition: int, offset: int) -> None:
        if isinstance(event, DeadLetter):
            self.add_letter(event, topic, partition, offset)
        elif isinstance(event, DeadLetterRedriven):
            self.add_redrive(event)

    def all(self) -> list[Letter]:
        """Every letter, newest first, each with the chain of earlier failures of the same message."""
        targets = {(r.target_topic, r.target_partition, r.target_offset): dlid for dlid, r in self.redrives.items()}
        for entry in self.letters.values():
            chain, seen = [], {entry.id}
            d = entry.letter
            earlier = targets.get((d.source_topic, d.source_partition, d.source_offset))
            while earlier is not None and earlier in self.letters and earlier not in seen:
                seen.add(earlier)
                before = self.letters[earlier]
                chain.insert(0, before)
                b = before.letter
                earlier = targets.get((b.source_topic, b.source_partition, b.source_offset))
            entry.history = chain
        return sorted(self.letters.values(), key=lambda e: (e.letter.occurred_at, e.offset), reverse=True)


def select(letters: Iterable[Letter], *, component: str | None = None, error_kind: str | None = None,
           reason: str | None = None, since: int | None = None, until: int | None = None,
           ids: Iterable[str] | None = None, offsets: Iterable[tuple[str, int, int]] | None = None,
           correlation_id: str | None = None, pending_only: bool = False) -> list[Letter]:
    """The letters matching every given filter (reason: a substring, case-insensitive; offsets: the
    dead letters' own (topic, partition, offset))."""
    wanted_ids = set(ids) if ids is not None else None
    wanted_offsets = set(offsets) if offsets is not None else None
    found = []
    for e in letters:
        d = e.letter
        if component and d.component != component:
            continue
        if error_kind and d.error_kind != error_kind:
            continue
        if reason and reason.lower() not in d.reason.lower():
            continue
        if since is not None and d.occurred_at < since:
            continue
        if until is not None and d.occurred_at > until:
            continue
        if wanted_ids is not None and d.event_id not in wanted_ids:
            continue
        if wanted_offsets is not None and (e.topic, e.partition, e.offset) not in wanted_offsets:
            continue
        if correlation_id and d.correlation_id != correlation_id:
            continue
        if pending_only and e.redriven is not None:
            continue
        found.append(e)
    return found


@dataclass
class RedriveResult:
    sent: list[Letter] = field(default_factory=list)
    already: list[Letter] = field(default_factory=list)
    """Redriven before: nothing sent again."""
    skipped: list[tuple[Letter, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"redriven {len(self.sent)}, already redriven before {len(self.already)}, "
                f"skipped {len(self.skipped)}")


def redrive(letters: Iterable[Letter], *, book: Book, producer, encode: Callable[[Event, str], bytes],
            redrive_topics: Mapping[str, str], redriven_by: str, timeout: float = 30.0) -> RedriveResult:
    """Re-publish each letter's original bytes to its source topic and record it (see the module doc).

    ``producer`` is a confluent-kafka Producer (murmur2 partitioner, like the components');
    ``redrive_topics`` maps a component to the runtime name of its redrives topic."""
    result = RedriveResult()
    for entry in letters:
        d = entry.letter
        if entry.redriven is not None or d.event_id in book.redrives:
            result.already.append(entry)
            continue
        if d.payload is None:
            result.skipped.append((entry, "no payload to re-publish"))
            continue
        target = redrive_topics.get(d.component)
        if target is None:
            result.skipped.append((entry, f"no redrives topic for component {d.component!r}"))
            continue
        delivered: list[Any] = []
        producer.produce(d.source_topic, key=d.key, value=d.payload,
                         headers=[("opengym.redrive.of", d.event_id.encode())],
                         on_delivery=lambda err, msg: delivered.append((err, msg)))
        if producer.flush(timeout) != 0 or not delivered or delivered[0][0] is not None:
            why = delivered[0][0] if delivered else "no delivery report"
            result.skipped.append((entry, f"re-publishing to {d.source_topic} failed: {why}"))
            continue
        msg = delivered[0][1]
        record = DeadLetterRedriven(
            event_id=redrive_event_id(d.event_id), correlation_id=d.correlation_id, causation_id=d.event_id,
            occurred_at=now_ms(), component=d.component, dead_letter_topic=entry.topic,
            dead_letter_partition=entry.partition, dead_letter_offset=entry.offset,
            target_topic=msg.topic(), target_partition=msg.partition(), target_offset=msg.offset(),
            redriven_by=redriven_by, error_kind=d.error_kind)
        recorded: list[Any] = []
        producer.produce(target, key=d.correlation_id.encode(), value=encode(record, target),
                         on_delivery=lambda err, m: recorded.append(err))
        if producer.flush(timeout) != 0 or not recorded or recorded[0] is not None:
            result.skipped.append((entry, f"re-published, but recording it on {target} failed: "
                                          f"{recorded[0] if recorded else 'no delivery report'}"))
            continue
        book.add_redrive(record)
        result.sent.append(entry)
    return result


def read_book(dead_letter_topics: Iterable[str], redrive_topics: Iterable[str], codec,
              timeout: float = 60.0) -> Book:
    """Every record on these topics, from the start to their current end (in one read: a redrive record
    read before or after its letter finds it either way)."""
    from opengym_streams.kafka_read import read_to_end

    book = Book(codec.decode)
    for message in read_to_end(list(redrive_topics) + list(dead_letter_topics), timeout=timeout):
        _feed(book, codec, message)
    return book


def _feed(book: Book, codec, message) -> None:
    try:
        event = codec.decode(message.value())
    except Exception:  # not ours to judge here: a dead-letter topic holds what the runtime wrote
        return
    book.add(event, message.topic(), message.partition(), message.offset())
