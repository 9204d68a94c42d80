"""opengym produce: send events given as JSON, validated against their contracts."""

from __future__ import annotations

import json
import sys
from typing import Iterator, TextIO

from opengym_streams.codec import AvroCodec, EncodeError, build_event
from opengym_streams.kafka import producer
from opengym_streams.system import load
from opengym_streams.topic import topic_name

def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "produce", help="send events given as JSON (an argument, or JSON lines from a file or stdin)",
        description='Each event is a JSON object {"type": "<Event>", <its fields>...}, e.g. {"type": '
                    '"BookClassRequested", "booking_id": ..., ...}. event_id and occurred_at are filled in when '
                    "absent; correlation_id defaults to the first of the system's correlation fields the event "
                    "carries (OpenGym: booking_id, settlement_id, class_id, instrument_id, payment_id). The topic "
                    "comes from the catalog. Invalid lines are reported and not sent; valid ones are.")
    parser.add_argument("event", nargs="?", help="one event as JSON")
    parser.add_argument("--file", "-f", help="JSON lines to send ('-' for stdin, the default without EVENT)")
    parser.add_argument("--topic", help="send to this topic (it must carry the event type)")
    parser.set_defaults(handler=_produce)


def _lines(args) -> Iterator[tuple[int, str]]:
    if args.event is not None:
        yield 1, args.event
        return
    stream: TextIO
    if args.file in (None, "-"):
        stream = sys.stdin
    else:
        stream = open(args.file, encoding="utf-8")
    with stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line


def parse_line(text: str, correlation_fields: tuple[str, ...] | None = None):
    """An event from one JSON line; without ``correlation_id`` it takes the first of the system's
    correlation fields it carries (a booking's transaction id is its booking_id, ...)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    if correlation_fields is None:
        correlation_fields = load().correlation_fields
    if isinstance(data, dict) and "correlation_id" not in data:
        for name in correlation_fields:
            if isinstance(data.get(name), str):
                data["correlation_id"] = data[name]
                break
    return build_event(data)


def _produce(args) -> int:
    if args.event is not None and args.file is not None:
        print("opengym produce: give EVENT or --file, not both", file=sys.stderr)
        return 2
    codec = AvroCodec()
    client = producer()
    failures: list[str] = []
    sent = rejected = 0

    def delivered(err, msg, number):
        if err is not None:
            failures.append(f"line {number}: not delivered: {err.str()}")

    try:
        explicit = load().topics.lookup(args.topic) if args.topic else None
    except LookupError as exc:
        print(f"opengym produce: {exc}", file=sys.stderr)
        return 2
    for number, text in _lines(args):
        try:
            event = parse_line(text)
            topic = explicit or load().topic_for_event(event.avro_name)
            if event.avro_name not in topic.events:
                raise ValueError(f"topic {topic.name} does not carry {event.type_name}")
            name = topic_name(topic)
            payload = codec.encode(event, name)
        except (ValueError, EncodeError, LookupError) as exc:
            rejected += 1
            print(f"line {number}: {exc}", file=sys.stderr)
            continue
        while True:
            try:
                client.produce(name, key=event.correlation_id.encode(), value=payload,
                               on_delivery=lambda err, msg, n=number: delivered(err, msg, n))
                break
            except BufferError:
                client.poll(0.5)
        client.poll(0)
        sent += 1
    remaining = client.flush(60)
    if remaining:
        failures.append(f"{remaining} events still unacknowledged after 60s")
    for failure in failures:
        print(failure, file=sys.stderr)
    delivered_ok = sent - len([f for f in failures if "not delivered" in f]) - remaining
    print(f"sent {delivered_ok}, rejected {rejected}" + (f", failed {sent - delivered_ok}" if failures else ""),
          file=sys.stderr)
    return 1 if (rejected or failures) else 0
