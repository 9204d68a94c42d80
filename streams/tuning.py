"""Faust/aiokafka settings that Faust does not expose, applied once per worker process.

**Fetch wait.** Faust creates its aiokafka consumer with a hard-coded ``fetch_max_wait_ms=1500``.
aiokafka sends one fetch per broker for the partitions that have nothing buffered; a partition whose
records were just handed over joins only the *next* request, which waits while the in-flight one sits at
the broker for up to ``fetch_max_wait_ms`` when the other partitions are quiet. At a moderate rate, every
hop of a pipeline then waits a few hundred milliseconds (we measured 200 to 600 ms median per hop and a 2.2 s
request-to-terminal p50 at 50 bookings/s). ``OPENGYM_FETCH_MAX_WAIT_MS`` (default 50) bounds that wait.
The cost is more fetch requests on an idle system: one per worker every 50 ms (20 ms cost more CPU
in idle workers and the broker than it saved in latency; docs/performance.md has the runs).
The short wait matters only for a request that leaves partitions out (their records still buffered, or
paused): one that asks for every partition the worker holds on that broker returns as soon as any record
arrives for any of them, so its wait costs no latency. Such a request waits up to
``OPENGYM_FETCH_IDLE_WAIT_MS`` (1000; Kafka's default is 500) instead
(:func:`wait_long_when_nothing_is_left_out`): an idle worker sends one fetch a second, not twenty (an
idle Reservation: 1.16% of a core at 500 ms, 0.96% at 1000, 0.90% at 2000; docs/performance.md). Not in
the first ten seconds of an assignment: a replay test once lost its only message of a partition on its
way to the agent with a long fetch in flight across the end of recovery (it was not the cause: the
commit guard now reads such a message again, docs/notes/components.md; the rule stayed, it costs nothing).

**No commit passes a message that never reached its agent** (:mod:`opengym_streams.commit_guard`).
Faust dropped the first message of a partition when a worker's recovery ended while messages were
arriving, and committed past it; the guard installed here makes every commit stop at the first
fetched offset nobody acknowledged (seeking back to it when the hold lasts), and mode's flow control
stop emptying the streams' queues when it resumes flow that already runs. The evidence and the
measurements: docs/notes/observer.md.

**A message a stream skips is not acknowledged.** A Faust stream drops a message fetched before a
rebalance (stale ``generation_id``) or while flow control is off, counting on the seek that follows to
fetch it again. Faust's compiled stream iterator (the one workers run) never acks such a message, but
the pure-Python one (``NO_CYTHON=1``) does, which would count it as handled. The patched
``Consumer.ack`` refuses those acks (a message no stream took, of a stale generation or fetched while
flow is off), so the commit guard holds the commit below them on both paths. Acks of events a stream
did take always pass, also while flow is suspended: ``take_events`` acks a batch after the agent is
done with it, which can fall inside a rebalance, and the rebalance waits for exactly those acks.

**Outputs and state before the offsets.** Before every offset commit (the periodic one and the one a
rebalance makes before it gives partitions away) the patched ``Consumer._commit_tps`` calls the
runtime's :meth:`~opengym_streams.runtime.Runtime.before_commit`: with no batch running, it waits until
the broker has every output sent since the last commit, then writes each changed key's state to its
changelog and waits for that. Only then does Faust commit, so no offset is committed ahead of the
outputs or the state it caused. The two compose: ``take_batches`` acks a batch only after the agent
left it (and so left :class:`~opengym_streams.runtime.CommitGate`), ``before_commit`` confirms the
outputs and state of every batch that left the gate, and the guard, called by Faust right after it with
no await in between, commits only offsets acknowledged by then: an acknowledged offset's outputs and
state are always confirmed when it is committed.

**No debug records at ``-l warn``.** At WARN and above Faust's worker shows a progress spinner that
advances on every log record: it sets the root logger to DEBUG and adds a handler for it. The spinner
stops when the worker is ready, but the level stays, so every ``log.debug`` in aiokafka's fetcher and
connections builds a LogRecord that the console handler then drops: a fifth of an idle worker's CPU
(py-spy, Reservation at ``-l warn``, the benchmark's level). When the spinner finishes, the patched
``Worker._on_startup_end_spinner`` removes its handler and sets the root logger back to the worker's level.

**A produce request takes every batch that is waiting for its broker.** aiokafka lingers each
partition's batch on its own clock and sends only the batches whose linger has run out, so a worker
writing to twenty partitions sends up to twenty small requests per linger period. Java's producer
drains all of a broker's batches once one of them is due; :func:`drain_whole_node` does the same
(``OPENGYM_DRAIN_NODE=0`` turns it off). Fewer, larger requests: less CPU in the workers and the broker.

**A producer keeps the metadata of every topic it sends to.** aiokafka's client fetches the metadata
of all topics while it tracks none, and only of the tracked ones once it tracks any; a send to a topic
already in the map does not track it. Faust refreshes the producer's metadata (all topics) after it
creates its changelogs, so a worker's first sends find their topics there, untracked. When a later
send meets a topic missing from the map (a changelog the broker had not listed yet), tracking that one
topic narrows the map to it: a batch already lingering for another topic then has no leader and waits,
silently, until something sends to its topic again, or ``producer_request_timeout`` (20 minutes) runs
out. A downstream worker's first fact after start was lost that way (docs/notes/security.md).
:func:`track_sent_topics` tracks every topic a send asks about.

**Tables start at once.** Faust's table manager waits a second before it finalizes its channels, for
tables declared late; ours are all declared when the app is built (:func:`tables_start_without_their_second`).

**Tracing offsets.** ``OPENGYM_TRACE_OFFSETS=<file>`` records what happens to every input offset
(:mod:`opengym_streams.offset_trace`; ``python -m opengym_streams.offset_trace <file>`` names any offset
a worker committed past without handling it).
"""

from __future__ import annotations

import functools
import time

from opengym_streams import commit_guard

_applied = False


def fetch_max_wait_ms() -> int:
    from opengym_streams.settings import Settings

    return Settings.from_env().fetch_max_wait_ms


def apply(settings=None) -> None:
    """Patch Faust and aiokafka for this worker process (the runtime calls it when a worker starts)."""
    global _applied
    if _applied:
        return
    if settings is None:
        from opengym_streams.settings import Settings

        settings = Settings.from_env()
    if settings.trace_offsets.strip():
        from opengym_streams import offset_trace

        offset_trace.install(settings.trace_offsets.strip())
    from faust.transport.drivers import aiokafka as faust_aiokafka

    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer

    def create_worker_consumer(self, transport):
        consumer = create(self, transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher, so setting it here takes effect.
        consumer._fetch_max_wait_ms = settings.fetch_max_wait_ms
        commit_guard.attach(self.consumer, consumer)
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer

    from faust.transport.consumer import Consumer

    commit_guard.install(settings.redeliver_after_s)

    ack = Consumer.ack

    def ack_only_delivered(self, message) -> bool:
        if skipped_by_its_stream(self.app, message):
            return False
        return ack(self, message)

    Consumer.ack = ack_only_delivered

    commit_tps = Consumer._commit_tps

    async def commit_tps_after_outputs_and_state(self, tps, start_new_transaction):
        runtime = getattr(self.app, "opengym_runtime", None)
        if runtime is not None:
            await runtime.before_commit()
        else:  # a plain Faust app with our tables
            from opengym_streams.tables import flush_table_changes

            flush_table_changes(self.app)
        return await commit_tps(self, tps, start_new_transaction)

    Consumer._commit_tps = commit_tps_after_outputs_and_state

    from faust.worker import Worker

    Worker._on_startup_end_spinner = end_spinner_and_its_debug_level(Worker._on_startup_end_spinner)

    if settings.drain_node:
        from aiokafka.producer.message_accumulator import MessageAccumulator

        MessageAccumulator.drain_by_nodes = drain_whole_node(MessageAccumulator.drain_by_nodes)

    if settings.fetch_idle_wait_ms:
        from aiokafka.consumer.fetcher import Fetcher

        Fetcher._get_actions_per_node = wait_long_when_nothing_is_left_out(
            Fetcher._get_actions_per_node, settings.fetch_idle_wait_ms)

    from aiokafka.client import AIOKafkaClient

    AIOKafkaClient._wait_on_metadata = track_sent_topics(AIOKafkaClient._wait_on_metadata)

    from faust.tables.manager import TableManager

    TableManager.on_start = tables_start_without_their_second(TableManager.on_start)
    _applied = True


def tables_start_without_their_second(on_start):
    """Faust's ``TableManager.on_start`` sleeps one second first, so that tables declared while the app
    starts are in before the channels are finalized. The runtime declares every table when it builds the
    app, before the worker starts: the second is only start-up time (a fifth of an idle worker's restart)."""
    @functools.wraps(on_start)
    async def start(self) -> None:
        sleep = self.sleep

        async def no_first_second(seconds, *args, **kwargs):
            self.sleep = sleep
            await sleep(0 if seconds == 1.0 else seconds, *args, **kwargs)

        self.sleep = no_first_second
        try:
            await on_start(self)
        finally:
            self.sleep = sleep
    return start


def end_spinner_and_its_debug_level(end_spinner):
    @functools.wraps(end_spinner)
    def end(self) -> None:
        spinning = self.spinner is not None
        end_spinner(self)
        if not spinning:
            return
        import logging

        from faust.utils.terminal.spinners import SpinnerHandler
        from mode.utils.logging import level_number

        root = logging.getLogger()
        for handler in [h for h in root.handlers if isinstance(h, SpinnerHandler)]:
            root.removeHandler(handler)
        root.setLevel(level_number(self.loglevel) if self.loglevel else logging.WARNING)

    return end


def track_sent_topics(wait_on_metadata):
    """Wrap aiokafka's ``_wait_on_metadata`` (called by every send): a topic known from an all-topics
    fetch becomes tracked, so narrowing the metadata to the tracked topics cannot drop it."""

    @functools.wraps(wait_on_metadata)
    async def _wait_on_metadata(self, topic):
        if topic not in self._topics and self.cluster.partitions_for_topic(topic) is not None:
            self._topics.add(topic)  # known already: no refresh needed, only keep it in every later one
        return await wait_on_metadata(self, topic)

    return _wait_on_metadata


SETTLED_AFTER_S = 10.0
"""How long an assignment runs before its fetches may wait long: recovery, the seeks to the committed
offsets and the resume of flow all happen in its first seconds, and a fetch in flight across them is
where Faust loses a message on its way to the agent (:mod:`opengym_streams.commit_guard`)."""


def wait_long_when_nothing_is_left_out(get_actions_per_node, idle_wait_ms: int):
    """Wrap aiokafka's ``Fetcher._get_actions_per_node``: a fetch request that asks for every partition
    this consumer holds on its broker may wait ``idle_wait_ms`` there, once the assignment has run for
    ``SETTLED_AFTER_S``; one that leaves any out keeps the short wait, so the left-out partitions join
    the next request soon."""

    @functools.wraps(get_actions_per_node)
    def get_actions(self, assignment):
        actions = get_actions_per_node(self, assignment)
        fetch_requests = actions[0]
        since = getattr(self, "_opengym_assigned", None)
        if since is None or since[0] is not assignment:
            since = self._opengym_assigned = (assignment, time.monotonic())
        if fetch_requests and time.monotonic() - since[1] >= SETTLED_AFTER_S:
            held: dict[int, int] = {}
            for tp in assignment.tps:
                node = self._select_read_replica(tp)
                held[node] = held.get(node, 0) + 1
            for node_id, request in fetch_requests:
                if sum(len(partitions) for _, partitions in request.topics) == held.get(node_id):
                    request._max_wait_ms = max(request._max_wait_ms, idle_wait_ms)
        return actions

    return get_actions


def drain_whole_node(drain):
    """Wrap aiokafka's ``drain_by_nodes``: once one batch for a broker is due, send all of its batches."""

    @functools.wraps(drain)
    def drain_by_nodes(self, ignore_nodes, muted_partitions=frozenset()):
        ready = set()
        for tp, queue in self._batches.items():
            if queue and tp not in muted_partitions and not queue[0].remaining_linger():
                leader = self._cluster.leader_for_partition(tp)
                if leader is not None and leader != -1 and leader not in ignore_nodes:
                    ready.add(leader)
        if ready:
            for tp, queue in self._batches.items():
                if queue and tp not in muted_partitions and self._cluster.leader_for_partition(tp) in ready:
                    queue[0]._linger_time = 0  # the node's request goes now: this batch rides along
        return drain(self, ignore_nodes, muted_partitions)

    return drain_by_nodes


def delivered_in_current_generation(app, message) -> bool:
    """True when a stream would hand ``message`` to its agent (the same test faust's Stream applies)."""
    return app.flow_control.is_active() and message.generation_id == app.consumer_generation_id


def skipped_by_its_stream(app, message) -> bool:
    """A message no stream took (streams mark what they take ``tracked``) that a stream would skip now.

    An event a stream did take is acknowledged even while flow is suspended: a ``take_events`` batch is
    acked after the agent is done with it, and a rebalance waits for exactly those acks before it goes on.
    """
    return not getattr(message, "tracked", False) and not delivered_in_current_generation(app, message)
