"""Plain confluent-kafka clients for the CLI, tests and benchmarks (the agents use Faust's).

Every client gets the security settings of :mod:`streams.security` (SASL, TLS). On a secured broker a
new client first checks that the broker accepts it: a wrong password or an untrusted certificate
raises :class:`streams.security.AuthenticationFailed` within a second or so, instead of every later
call waiting out its own timeout while librdkafka retries in the background.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from opengym_streams.security import AuthenticationFailed, kafka_client_config
from opengym_streams.settings import Settings, get_settings
from opengym_streams.topic import Topic, topic_name

QUIET_LOGGER = logging.getLogger("opengym.kafka")
"""librdkafka logs through this one (never to stderr): clients report errors to their callers instead."""
QUIET_LOGGER.addHandler(logging.NullHandler())
QUIET_LOGGER.propagate = False
log = logging.getLogger("opengym.topics")

REFUSALS = (KafkaError._AUTHENTICATION, KafkaError._SSL)
"""librdkafka errors that mean the broker will not have us as we are (credentials, certificates)."""
CHECK_TIMEOUT_S = 10.0
"""How long a new client waits for the broker to accept or refuse it; a broker that does neither
(down, unreachable) is left to the caller's own timeouts."""

Client = TypeVar("Client", Producer, Consumer, AdminClient)


def _secured(config: dict, component: str | None = None) -> dict:
    """``config`` plus the security settings, and an error callback that remembers refusals."""
    security = kafka_client_config(component)
    if not security:
        return config
    refusals: list[str] = []
    user_cb = config.get("error_cb")

    def on_error(err: KafkaError) -> None:
        if err.code() in REFUSALS:
            refusals.append(err.str())
        if user_cb is not None:
            user_cb(err)

    return {**config, **security, "error_cb": on_error, "_refusals": refusals}


def _checked(make, config: dict) -> Client:
    """Build the client; on a secured broker, wait until it is accepted or refused (then raise)."""
    refusals = config.pop("_refusals", None)
    client = make(config)
    if refusals is None:
        return client
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            client.list_topics(timeout=0.5)
            return client
        except KafkaException:
            pass
        client.poll(0)  # serves the error callback
        if refusals:
            who = config.get("sasl.username")
            raise AuthenticationFailed(f"the broker at {config['bootstrap.servers']} refused "
                                       f"{'user ' + who if who else 'us'}: {refusals[0]}")
    return client


def producer(settings: Settings | None = None, *, component: str | None = None, **overrides) -> Producer:
    """A producer as this process's user, or as ``component`` (its own principal, given its credentials)."""
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
    return _checked(Producer, _secured(config, component))


def consumer(group_id: str, settings: Settings | None = None, *, component: str | None = None,
             **overrides) -> Consumer:
    config = {
        "bootstrap.servers": (settings or get_settings()).bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "logger": QUIET_LOGGER,
    }
    config.update(overrides)
    return _checked(Consumer, _secured(config, component))


def admin(settings: Settings | None = None, component: str | None = None) -> AdminClient:
    """An admin client as this process's user (or as ``component``, given its credentials)."""
    config = {"bootstrap.servers": (settings or get_settings()).bootstrap, "logger": QUIET_LOGGER}
    return _checked(AdminClient, _secured(config, component))


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
