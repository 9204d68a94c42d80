"""opengym consume TOPIC: print decoded events as JSON lines."""

from __future__ import annotations

import json
import sys
import uuid

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

from opengym_streams.codec import AvroCodec, DecodeError
from opengym_streams.kafka import consumer
from opengym_streams.system import load
from opengym_streams.topic import topic_name


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "consume", help="print a topic's events as JSON lines",
        description="Reads every partition from the start (or the end with --from-end) and stops when "
                    "caught up, unless --follow. Messages that do not decode are reported on stderr "
                    "with their partition and offset, and reading goes on.")
    parser.add_argument("topic", help="catalog topic name, e.g. opengym.reservation.events")
    parser.add_argument("--follow", action="store_true", help="keep reading new events")
    parser.add_argument("--from-end", action="store_true", help="only events produced from now on")
    parser.add_argument("--max", type=int, default=None, help="stop after this many events")
    parser.add_argument("--meta", action="store_true", help="add topic, partition, offset and key")
    parser.set_defaults(handler=_consume)


def _consume(args) -> int:
    try:
        name = topic_name(load().topics.lookup(args.topic))
    except LookupError:
        name = args.topic  # not in the catalog (e.g. a test topic): read it all the same
    codec = AvroCodec(auto_register=False)
    client = consumer(f"opengym-consume-{uuid.uuid4()}")
    metadata = client.list_topics(name, timeout=10).topics.get(name)
    if metadata is None or metadata.error is not None:
        print(f"opengym consume: topic {name} does not exist", file=sys.stderr)
        return 2
    partitions = sorted(metadata.partitions)
    start = OFFSET_END if args.from_end else OFFSET_BEGINNING
    client.assign([TopicPartition(name, p, start) for p in partitions])
    ends = {p: client.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1] for p in partitions}
    positions = {p: (ends[p] if args.from_end else 0) for p in partitions}
    count = errors = 0
    try:
        while True:
            if not args.follow and all(positions[p] >= ends[p] for p in partitions):
                break
            if args.max is not None and count >= args.max:
                break
            msg = client.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                print(f"opengym consume: {msg.error().str()}", file=sys.stderr)
                continue
            positions[msg.partition()] = msg.offset() + 1
            try:
                out = codec.decode(msg.value()).to_json_dict()
            except DecodeError as exc:
                errors += 1
                print(json.dumps({"error": exc.kind, "reason": exc.reason, "topic": name,
                                  "partition": msg.partition(), "offset": msg.offset()}), file=sys.stderr)
                continue
            if args.meta:
                key = msg.key()
                out["_meta"] = {"topic": name, "partition": msg.partition(), "offset": msg.offset(),
                                "key": key.decode(errors="replace") if key is not None else None,
                                "timestamp": msg.timestamp()[1]}
            print(json.dumps(out), flush=args.follow)
            count += 1
    finally:
        client.close()
    if errors:
        print(f"{count} events, {errors} undecodable messages", file=sys.stderr)
    return 0
