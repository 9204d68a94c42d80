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

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

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
        # One produce request in flight per broker. With several, librdkafka takes a success for a later
        # request as proof that an earlier, failed one was stored too ("implicit ack"), and a broker
        # accepts any first sequence number from a producer it has no state for on a partition
        # (KIP-360; Kafka 4.5 narrows it, KAFKA-15591). On a partition the broker had not taken yet, the
        # first request was refused, the second stored, and the first reported delivered, without an
        # offset: records lost with every delivery report a success (docs/notes/observer.md).
        "max.in.flight.requests.per.connection": 1,
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


LEADERSHIP_TIMEOUT_S = 120.0
"""How long ``create_topics`` waits for the broker to lead the partitions it created. Usually under a
second; on this shared machine the broker once took 38 s (its log silent for 29 of them) after
confirming a creation."""


def create_topics(topics: Iterable[Topic] | None = None, settings: Settings | None = None,
                  timeout: float = 30.0) -> dict[str, str]:
    """Create the topics that do not exist yet (default: every topic of the system); return
    {runtime name: 'created' | 'exists'}.

    Returns once the broker leads every partition it created (it answers ListOffsets for them): the
    controller confirms a creation before the broker has taken the new partitions, and a produce
    request arriving in between is refused, which an idempotent producer can turn into a silent loss
    (see ``producer``). An existing topic with a different partition count is an error: the tables'
    changelogs are co-partitioned with it, and silently accepting it would break that.
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
        wait_until_led(client, {t.topic: t.num_partitions for t in missing}, max(timeout, LEADERSHIP_TIMEOUT_S),
                       settings)
    return result


MISSING_TOPIC_ERRORS = {"_NOENT", "UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"}
"""A client answers these, without asking again, once a metadata reply did not list the topic yet."""


def wait_until_led(client: AdminClient, partitions: dict[str, int], timeout: float = LEADERSHIP_TIMEOUT_S,
                   settings: Settings | None = None) -> None:
    """Wait until the broker answers ListOffsets for every partition of these topics (it leads them)."""
    pending = {TopicPartition(name, p) for name, count in partitions.items() for p in range(count)}
    deadline = time.monotonic() + timeout
    delay = 0.05
    while pending:
        refusals: dict[str, int] = {}
        futures = client.list_offsets({tp: OffsetSpec.latest() for tp in pending}, request_timeout=5)
        for tp, future in futures.items():
            try:
                future.result()
                pending.discard(tp)
            except KafkaException as exc:  # NOT_LEADER_OR_FOLLOWER: the broker has not taken it yet
                refusals[exc.args[0].name()] = refusals.get(exc.args[0].name(), 0) + 1
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker does not lead {len(pending)} new partitions {timeout:.0f} s after "
                               f"creating them (refusals {refusals}), e.g. "
                               f"{sorted((tp.topic, tp.partition) for tp in pending)[:3]}")
        if MISSING_TOPIC_ERRORS & refusals.keys():
            # A lagging broker's metadata did not list the new topics yet, and librdkafka keeps that
            # answer for minutes: ask through a client that has not seen it.
            client = admin(settings)
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


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
