"""Plain confluent-kafka clients for the CLI, tests and benchmarks (the agents use Faust's)."""

from __future__ import annotations

import logging
from typing import Iterable

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from opengym_streams.settings import Settings, get_settings
from opengym_streams.topic import Topic, topic_name

QUIET_LOGGER = logging.getLogger("opengym.kafka")
"""librdkafka logs through this one (never to stderr): clients report errors to their callers instead."""
QUIET_LOGGER.addHandler(logging.NullHandler())
QUIET_LOGGER.propagate = False
log = logging.getLogger("opengym.topics")


def producer(settings: Settings | None = None, **overrides) -> Producer:
    config = {
        "bootstrap.servers": (settings or get_settings()).bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        # Java's and aiokafka's (so Faust's) default for keyed records. librdkafka's own default is
        # CRC32-based: with it a correlation id would land on another partition than the tables'
        # changelogs and the components' own events expect.
        "partitioner": "murmur2_random",
        "logger": QUIET_LOGGER,
    }
    config.update(overrides)
    return Producer(config)


def consumer(group_id: str, settings: Settings | None = None, **overrides) -> Consumer:
    config = {
        "bootstrap.servers": (settings or get_settings()).bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "logger": QUIET_LOGGER,
    }
    config.update(overrides)
    return Consumer(config)


def admin(settings: Settings | None = None) -> AdminClient:
    return AdminClient({"bootstrap.servers": (settings or get_settings()).bootstrap, "logger": QUIET_LOGGER})


def create_topics(topics: Iterable[Topic] | None = None, settings: Settings | None = None,
                  timeout: float = 30.0) -> dict[str, str]:
    """Create the topics that do not exist yet (default: every topic of the system); return
    {runtime name: 'created' | 'exists'}.

    An existing topic with a different partition count is an error: the tables' changelogs are
    co-partitioned with it, and silently accepting it would break that.
    """
    if topics is None:
        from opengym_streams.system import load

        topics = load().topics.all
    client = admin(settings)
    wanted = {topic_name(t): t for t in topics}
    existing = client.list_topics(timeout=timeout).topics
    result: dict[str, str] = {}
    for name, topic in wanted.items():
        if name in existing:
            have = len(existing[name].partitions)
            if have != topic.partitions:
                raise RuntimeError(f"topic {name} exists with {have} partitions, the catalog says "
                                   f"{topic.partitions}")
            result[name] = "exists"
    missing = [NewTopic(name, t.partitions, 1) for name, t in wanted.items() if name not in result]
    if missing:
        for name, future in client.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: lost a race with another creator
                    result[name] = "exists"
                else:
                    raise
    return result


def delete_topics_with_prefix(*prefixes: str, settings: Settings | None = None) -> int:
    """Delete every topic whose name starts with one of ``prefixes`` (best effort); how many were asked.

    Runs that namespace their topics (benchmarks, tests) call it when done: the broker slows down
    with thousands of leftover topics (docs/notes/components.md).
    """
    if not prefixes or any(not p for p in prefixes):
        raise ValueError("refusing to delete topics without a non-empty prefix")
    client = admin(settings)
    names = [t for t in client.list_topics(timeout=10).topics if t.startswith(prefixes)]
    for future in (client.delete_topics(names, operation_timeout=30).values() if names else ()):
        try:
            future.result(60)
        except KafkaException as exc:  # already gone, or the broker is busy: a leftover harms nothing
            log.warning("deleting a topic failed: %s", exc)
    return len(names)
