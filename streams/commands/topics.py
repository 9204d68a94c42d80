"""opengym topics create | list."""

from __future__ import annotations

import sys

from confluent_kafka import KafkaException

from opengym_streams.kafka import create_topics
from opengym_streams.system import load
from opengym_streams.topic import topic_name


def register(subparsers) -> None:
    parser = subparsers.add_parser("topics", help="the topic catalog")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create every catalog topic that does not exist (idempotent)")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="print the catalog: topic, owner, partitions, events")
    listing.set_defaults(handler=_list)


def _create(args) -> int:
    try:
        result = create_topics(load().topics.all)
    except (KafkaException, RuntimeError) as exc:
        print(f"opengym topics create: {exc}", file=sys.stderr)
        return 1
    for name, state in sorted(result.items()):
        print(f"{name}: {state}")
    created = sum(1 for s in result.values() if s == "created")
    print(f"{created} created, {len(result) - created} already existed")
    return 0


def _list(args) -> int:
    for topic in load().topics.all:
        events = ", ".join(e.rsplit(".", 1)[-1] for e in topic.events)
        print(f"{topic_name(topic)}\towner={topic.owner}\tpartitions={topic.partitions}\t{events}")
    return 0
