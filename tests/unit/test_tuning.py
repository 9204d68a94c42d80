"""Faust settings the workers run with and the patches streams/tuning.py applies to Faust and aiokafka."""

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer
from faust.types import TP

from opengym_streams import tuning


class FlowControl:
    def __init__(self, active: bool):
        self.active = active

    def is_active(self) -> bool:
        return self.active


def app(generation: int, flowing: bool = True):
    return SimpleNamespace(consumer_generation_id=generation, flow_control=FlowControl(flowing))


def test_a_message_fetched_in_the_current_generation_counts_as_delivered():
    assert tuning.delivered_in_current_generation(app(3), SimpleNamespace(generation_id=3))


def test_a_message_from_before_a_rebalance_is_not_delivered():
    assert not tuning.delivered_in_current_generation(app(4), SimpleNamespace(generation_id=3))


def test_a_message_fetched_during_recovery_is_not_delivered():
    assert not tuning.delivered_in_current_generation(app(3, flowing=False), SimpleNamespace(generation_id=3))


def consumer_state(generation: int, flowing: bool = True):
    """The parts of a Faust consumer that ``Consumer.ack`` reads and writes."""
    owner = app(generation, flowing)
    owner.topics = SimpleNamespace(acks_enabled_for=lambda topic: True)
    return SimpleNamespace(app=owner, _committed_offset=defaultdict(lambda: None), _acked_index=defaultdict(set),
                           _unacked_messages=set(), _acked=defaultdict(list), _n_acked=0, _waiting_for_ack=None)


class Message:
    def __init__(self, generation: int, offset: int, tracked: bool = False):
        self.generation_id, self.offset, self.tracked = generation, offset, tracked
        self.acked, self.tp, self.topic = False, TP("t", 0), "t"


def message(generation: int, offset: int) -> Message:
    return Message(generation, offset)


def test_the_patched_ack_refuses_a_skipped_message():
    tuning.apply()
    consumer = consumer_state(generation=2)
    stale = message(generation=1, offset=7)
    assert Consumer.ack(consumer, stale) is False
    assert stale.acked is False and consumer._acked[TP("t", 0)] == [], "the commit cannot move past it"


def test_an_event_a_stream_took_is_acked_even_while_a_rebalance_suspends_flow():
    """A take() buffer is acked after its batch; the rebalance waits for those acks (wait_empty)."""
    tuning.apply()
    consumer = consumer_state(generation=2, flowing=False)
    taken = Message(generation=2, offset=7, tracked=True)
    assert Consumer.ack(consumer, taken) is True and consumer._acked[TP("t", 0)] == [7]


def test_the_patched_ack_still_acks_a_delivered_message():
    tuning.apply()
    consumer = consumer_state(generation=2)
    delivered = message(generation=2, offset=7)
    assert Consumer.ack(consumer, delivered) is True
    assert delivered.acked is True and consumer._acked[TP("t", 0)] == [7]


def test_the_fetch_wait_is_bounded_by_default(monkeypatch):
    monkeypatch.delenv("OPENGYM_FETCH_MAX_WAIT_MS", raising=False)
    assert tuning.fetch_max_wait_ms() == 50
    monkeypatch.setenv("OPENGYM_FETCH_MAX_WAIT_MS", "100")
    assert tuning.fetch_max_wait_ms() == 100


def accumulator_with_three_batches():
    """aiokafka's real accumulator: partitions 0 and 1 of "here" on broker 0, "elsewhere" on broker 1."""
    import asyncio

    from aiokafka.producer.message_accumulator import MessageAccumulator
    from aiokafka.structs import TopicPartition

    cluster = SimpleNamespace(leader_for_partition=lambda tp: 1 if tp.topic == "elsewhere" else 0)
    due, lingering, other = TopicPartition("here", 0), TopicPartition("here", 1), TopicPartition("elsewhere", 0)

    async def build():
        accumulator = MessageAccumulator(cluster, 16384, 0, 30, linger_ms=10_000)
        for tp in (due, lingering, other):
            await accumulator.add_message(tp, b"k", b"v", timeout=1)
        accumulator._batches[due][0]._ctime -= 60  # this one's linger has run out, the others' has not
        return accumulator

    loop = asyncio.new_event_loop()
    return loop, loop.run_until_complete(build()), (due, lingering, other)


def test_a_due_batch_takes_the_other_batches_for_its_broker_along():
    from aiokafka.producer.message_accumulator import MessageAccumulator

    original = getattr(MessageAccumulator.drain_by_nodes, "__wrapped__", MessageAccumulator.drain_by_nodes)
    for drain, expected in ((original, {"due"}), (tuning.drain_whole_node(original), {"due", "lingering"})):
        loop, accumulator, (due, lingering, other) = accumulator_with_three_batches()
        try:
            nodes, _ = drain(accumulator, ignore_nodes=set())
            names = {due: "due", lingering: "lingering"}
            assert {names[tp] for tp in nodes.get(0, {})} == expected
            assert 1 not in nodes and accumulator._batches[other], "the other broker's batch keeps lingering"
        finally:
            loop.close()


def test_a_commit_waits_for_the_runtime_before_it_chooses_offsets():
    import asyncio

    tuning.apply()
    order = []

    async def before_commit():
        await asyncio.sleep(0)
        order.append("outputs and state delivered")

    app = SimpleNamespace(opengym_runtime=SimpleNamespace(before_commit=before_commit))
    consumer = SimpleNamespace(app=app, _filter_committable_offsets=lambda tps: order.append("offsets chosen") or {})
    assert asyncio.run(Consumer._commit_tps(consumer, [], True)) is False
    assert order == ["outputs and state delivered", "offsets chosen"]


def test_standby_replicas_come_from_the_environment(monkeypatch, tmp_path):
    import opengym.agents.reservation as reservation

    monkeypatch.setenv("OPENGYM_HOME", str(tmp_path))
    monkeypatch.delenv("OPENGYM_STANDBY_REPLICAS", raising=False)
    assert reservation.build().app.conf.table_standby_replicas == 0
    monkeypatch.setenv("OPENGYM_STANDBY_REPLICAS", "1")
    assert reservation.build().app.conf.table_standby_replicas == 1



def test_the_root_logger_leaves_debug_when_faust_s_spinner_ends():
    import logging

    from faust.utils.terminal.spinners import SpinnerHandler

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    spinner = SimpleNamespace(stopped=False, finish=lambda: None, file=SimpleNamespace(isatty=lambda: False))
    worker = SimpleNamespace(spinner=spinner, loglevel="warn")
    ended = []
    end = tuning.end_spinner_and_its_debug_level(lambda self: ended.append(self))
    try:
        root.addHandler(SpinnerHandler(spinner, level=logging.DEBUG))  # what Faust does at -l warn
        root.setLevel(logging.DEBUG)
        end(worker)
        assert ended == [worker]
        assert root.level == logging.WARNING
        assert not [h for h in root.handlers if isinstance(h, SpinnerHandler)]
        assert not logging.getLogger("aiokafka.consumer.fetcher").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers

# ---- the commit guard (streams/commit_guard.py) ---------------------------------------------------

from opengym_streams import commit_guard  # noqa: E402
from opengym_streams.commit_guard import FetchedOffsets, commit_point  # noqa: E402


def test_a_partition_whose_fetched_messages_were_all_acked_commits_past_the_last():
    assert commit_point([(5, 9)], {5, 6, 7, 8}, committed=5) == 9


def test_the_commit_stops_at_the_first_fetched_message_nobody_acked():
    assert commit_point([(5, 9)], {5, 6, 8}, committed=5) == 7


def test_a_lost_first_message_holds_the_commit_where_faust_moved_past_it():
    """The start-up loss: offset 22 (the committed one) was fetched and dropped, 23 and 24 were acked."""
    assert commit_point([(22, 25)], {23, 24}, committed=22) == 22
    original = Consumer._new_offset.__wrapped__ if hasattr(Consumer._new_offset, "__wrapped__") else Consumer._new_offset
    assert original(faust_consumer_state(committed=22, acked=[23, 24]), TP("t", 0)) == 25, \
        "Faust's own rule lets one missing message at the head through"


def test_offsets_missing_from_the_log_hold_nothing_back():
    # 10 and 11 are not in the log (a transaction marker, compaction): the fetcher returned 9, then 12.
    assert commit_point([(8, 10), (12, 14)], {8, 9, 12, 13}, committed=8) == 14


def test_a_never_committed_partition_starts_at_its_first_fetched_message():
    assert commit_point([(0, 3)], {1, 2}, committed=None) == 0
    assert commit_point([(0, 3)], {0, 1, 2}, committed=None) == 3


def test_nothing_fetched_since_the_commit_means_nothing_to_commit():
    assert commit_point([], {4}, committed=4) is None
    assert commit_point([(1, 4)], {1, 2, 3}, committed=4) is None


def test_fetched_offsets_are_kept_as_runs_and_a_refetch_adds_nothing():
    fetched = FetchedOffsets()
    fetched.add("tp", [3, 4, 5])
    fetched.add("tp", [6, 7, 9])
    assert fetched.runs_of("tp") == [(3, 8), (9, 10)]
    fetched.add("tp", [4, 5, 6])  # after a seek back to the committed offset
    assert fetched.runs_of("tp") == [(3, 8), (9, 10)]
    fetched.forget_below("tp", 5)
    assert fetched.runs_of("tp") == [(5, 8), (9, 10)]
    fetched.forget_below("tp", 9)
    assert fetched.runs_of("tp") == [(9, 10)]


def test_a_new_assignment_forgets_what_the_old_one_fetched():
    fetched = FetchedOffsets()
    subscriptions = SimpleNamespace(_opengym_fetched=fetched, _opengym_acking=lambda topic: topic == "in",
                                    subscription=SimpleNamespace(assignment="first"))
    tp, changelog = TP("in", 0), TP("changelog", 0)
    commit_guard.note_fetched(subscriptions, {tp: [SimpleNamespace(offset=o) for o in (1, 2)],
                                              changelog: [SimpleNamespace(offset=0)]})
    assert fetched.runs_of(tp) == [(1, 3)] and fetched.runs_of(changelog) == [], "only topics whose acks commit"
    subscriptions.subscription.assignment = "second"
    commit_guard.note_fetched(subscriptions, {tp: [SimpleNamespace(offset=7)]})
    assert fetched.assignment == "second" and fetched.runs_of(tp) == [(7, 8)]


def faust_consumer_state(committed, acked, fetched: FetchedOffsets | None = None, assignment="now"):
    from intervaltree import IntervalTree

    tp = TP("t", 0)
    state = SimpleNamespace(_acked=defaultdict(list, {tp: list(acked)}), _acked_index=defaultdict(set, {tp: set(acked)}),
                            _committed_offset=defaultdict(lambda: None, {tp: committed}),
                            _gap=defaultdict(IntervalTree), seeks=[])
    if fetched is not None:
        state._opengym_fetched = fetched
        fetched.assignment = assignment
        state._thread = SimpleNamespace(_consumer=SimpleNamespace(_subscription=SimpleNamespace(
            subscription=SimpleNamespace(assignment=assignment))))

    async def seek(tp, offset):
        state.seeks.append((tp, offset))

    state.seek = seek
    return state


def test_the_guarded_commit_stops_below_a_dropped_message_and_keeps_the_later_acks():
    tuning.apply()
    fetched = FetchedOffsets()
    fetched.add(TP("t", 0), range(22, 30))
    consumer = faust_consumer_state(committed=20, acked=[20, 21, 23, 24, 25], fetched=fetched)
    fetched.add(TP("t", 0), [20, 21])
    assert Consumer._new_offset(consumer, TP("t", 0)) == 22
    assert consumer._acked[TP("t", 0)] == [23, 24, 25], "acks above the hole wait for it"
    consumer._committed_offset[TP("t", 0)] = 22
    assert Consumer._new_offset(consumer, TP("t", 0)) is None, "nothing passes 22 until it is acked"
    consumer._acked[TP("t", 0)].append(22)
    assert Consumer._new_offset(consumer, TP("t", 0)) == 26


def test_the_guard_commits_what_batches_acked_by_the_time_the_runtime_confirmed_their_outputs():
    """The batched path: ``take_events`` acks a batch after the agent left it and its CommitGate; the patched
    commit runs the runtime's ``before_commit`` (the gate closed, the outputs of every batch that left it
    confirmed), then Faust's offset choice, which the guard makes, with no await in between."""
    import asyncio

    from opengym_streams.runtime import CommitGate, Runtime

    tuning.apply()
    tp = TP("t", 0)
    fetched = FetchedOffsets()
    fetched.add(tp, range(22, 28))
    consumer = faust_consumer_state(committed=22, acked=[], fetched=fetched)
    order, committed = [], []

    async def no_table_changes():
        return []

    runtime = SimpleNamespace(broken=None, gate=CommitGate(), pending=[], name="test",
                              _send_table_changes=no_table_changes)
    runtime._confirm = lambda futures, what: Runtime._confirm(runtime, futures, what)

    async def before_commit():
        await Runtime.before_commit(runtime)
        order.append("outputs confirmed")

    def ack(*offsets):
        consumer._acked[tp].extend(offsets)
        order.append(f"acked {offsets}")

    async def commit_offsets(offsets, start_new_transaction=True):
        committed.append(dict(offsets))
        consumer._committed_offset.update(offsets)
        return True

    async def no_attachments(offsets):
        return None

    consumer.app = SimpleNamespace(opengym_runtime=SimpleNamespace(before_commit=before_commit))
    consumer._filter_committable_offsets = lambda tps: Consumer._filter_committable_offsets(consumer, tps)
    consumer._new_offset = lambda tp: Consumer._new_offset(consumer, tp)
    consumer._should_commit = lambda tp, offset: True
    consumer._handle_attached = no_attachments
    consumer._commit_offsets = commit_offsets

    async def scenario():
        loop = asyncio.get_running_loop()
        output_of_b = loop.create_future()
        b_done = asyncio.Event()

        async def batch_b():  # offsets 24 and 25, in the gate when the commit starts
            async with runtime.gate.batch():
                await b_done.wait()
                runtime.pending.append(output_of_b)
            order.append("b left the gate")

        b = asyncio.ensure_future(batch_b())
        await asyncio.sleep(0)
        commit = asyncio.ensure_future(Consumer._commit_tps(consumer, [tp], True))
        await asyncio.sleep(0)
        ack(22, 23)  # batch a left the gate before; take_events acks it now
        b_done.set()
        await b
        ack(24, 25)  # while its output is still being confirmed
        await asyncio.sleep(0)
        assert not commit.done() and committed == [], "no offset before the outputs are confirmed"
        output_of_b.set_result(None)
        await asyncio.wait_for(commit, 1)
        assert committed == [{tp: 26}] and order[-1] == "outputs confirmed"
        # 26 was fetched but dropped on its way to the agent; the next batch holds 27.
        async with runtime.gate.batch():
            pass
        ack(27)
        assert await Consumer._commit_tps(consumer, [tp], True) is False, "nothing passes 26 until it is acked"
        assert committed == [{tp: 26}]

    asyncio.run(scenario())


def test_acks_from_before_the_current_assignment_commit_nothing():
    tuning.apply()
    fetched = FetchedOffsets()
    fetched.add(TP("t", 0), [5, 6])
    consumer = faust_consumer_state(committed=5, acked=[5, 6], fetched=fetched)
    consumer._thread._consumer._subscription.subscription.assignment = "after a rebalance"
    assert Consumer._new_offset(consumer, TP("t", 0)) is None


def test_a_message_held_back_too_long_is_sought_back_to_and_delivered_again(monkeypatch):
    import asyncio

    tuning.apply()
    clock = [1000.0]
    monkeypatch.setattr(commit_guard.time, "monotonic", lambda: clock[0])
    fetched = FetchedOffsets()
    fetched.add(TP("t", 0), range(22, 30))
    consumer = faust_consumer_state(committed=22, acked=[23, 24], fetched=fetched)

    async def commits():
        for _ in range(2):
            assert Consumer._new_offset(consumer, TP("t", 0)) is None
            clock[0] += commit_guard.REDELIVER_AFTER_S
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(commits())
    assert consumer.seeks == [(TP("t", 0), 22)], "one seek back to the dropped message, then a new wait"


def test_a_commit_held_only_by_the_message_in_hand_seeks_nothing(monkeypatch):
    tuning.apply()
    clock = [1000.0]
    monkeypatch.setattr(commit_guard.time, "monotonic", lambda: clock[0])
    fetched = FetchedOffsets()
    fetched.add(TP("t", 0), range(22, 30))
    consumer = faust_consumer_state(committed=22, acked=[], fetched=fetched)
    for _ in range(3):
        consumer._acked[TP("t", 0)][:] = []
        assert Consumer._new_offset(consumer, TP("t", 0)) is None
        clock[0] += 10 * commit_guard.REDELIVER_AFTER_S
    assert consumer.seeks == []


def checks_to_redeliver() -> int:
    """How many periodic checks, a check interval apart, reach the redelivery delay (counting the first)."""
    return int(commit_guard.REDELIVER_AFTER_S / commit_guard.CHECK_EVERY_S) + 1


def idle_checks(consumer, clock, rounds, busy=False):
    """Run the runtime's periodic check ``rounds`` times, a check interval apart, letting seeks run."""
    import asyncio

    async def checks():
        for _ in range(rounds):
            commit_guard.redeliver_unreached(consumer, busy=busy)
            clock[0] += commit_guard.CHECK_EVERY_S
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    asyncio.run(checks())


def consumer_with_queue(monkeypatch, committed, fetched_offsets, acked=(), queued=0):
    import asyncio

    clock = [1000.0]
    monkeypatch.setattr(commit_guard.time, "monotonic", lambda: clock[0])
    fetched = FetchedOffsets()
    fetched.add(TP("t", 0), fetched_offsets)
    consumer = faust_consumer_state(committed=committed, acked=acked, fetched=fetched)
    consumer._acked.pop(TP("t", 0))  # Faust has no entry for a partition nothing was acked on
    queue = asyncio.Queue()
    for n in range(queued):
        queue.put_nowait(n)
    consumer.app = SimpleNamespace(topics=SimpleNamespace(_tp_index={TP("t", 0): [SimpleNamespace(_queue=queue)]}))
    return consumer, clock, queue


def test_a_partition_s_only_message_lost_on_its_way_is_sought_back_to_once_its_agents_are_idle(monkeypatch):
    """The start-up loss: offset 0 was fetched, never reached an agent, and nothing after it was acked, so
    Faust never asks the guard about the partition; the periodic check finds it and reads it again."""
    consumer, clock, _ = consumer_with_queue(monkeypatch, committed=0, fetched_offsets=[0])
    rounds = checks_to_redeliver() - 1
    idle_checks(consumer, clock, rounds)
    assert consumer.seeks == [], "not before the redelivery delay has passed"
    idle_checks(consumer, clock, 1)
    assert consumer.seeks == [(TP("t", 0), 0)]
    idle_checks(consumer, clock, rounds - 1)
    assert consumer.seeks == [(TP("t", 0), 0)], "after a seek back the wait starts over"
    idle_checks(consumer, clock, 1)
    assert consumer.seeks == [(TP("t", 0), 0)] * 2, "and if the refetch never comes, it seeks again"


def test_a_message_still_queued_for_its_agent_or_in_a_running_batch_is_not_sought_back_to(monkeypatch):
    consumer, clock, queue = consumer_with_queue(monkeypatch, committed=0, fetched_offsets=range(0, 5), queued=3)
    idle_checks(consumer, clock, 20)
    assert consumer.seeks == [], "records queued: the agent is behind, not missing any"
    queue.get_nowait(), queue.get_nowait(), queue.get_nowait()
    idle_checks(consumer, clock, 20, busy=True)
    assert consumer.seeks == [], "a batch is being handled: the message may be in it"
    idle_checks(consumer, clock, checks_to_redeliver())
    assert consumer.seeks == [(TP("t", 0), 0)], "idle for the redelivery delay: read again from the first"


def test_a_partition_whose_fetched_messages_were_all_acknowledged_is_never_sought_back(monkeypatch):
    consumer, clock, _ = consumer_with_queue(monkeypatch, committed=0, fetched_offsets=range(0, 3))
    consumer._acked[TP("t", 0)] = [0, 1, 2]
    idle_checks(consumer, clock, 20)
    assert consumer.seeks == []
    consumer._committed_offset[TP("t", 0)] = 3  # committed and trimmed, as the guard leaves it
    consumer._acked[TP("t", 0)] = []
    idle_checks(consumer, clock, 20)
    assert consumer.seeks == []


def test_the_idle_check_looks_at_nothing_before_the_first_fetch_of_an_assignment(monkeypatch):
    consumer, clock, _ = consumer_with_queue(monkeypatch, committed=0, fetched_offsets=[0])
    consumer._thread._consumer._subscription.subscription.assignment = "after a rebalance"
    idle_checks(consumer, clock, 20)
    assert consumer.seeks == []


def test_resuming_flow_that_already_runs_keeps_the_messages_in_the_streams_queues():
    import asyncio

    from mode.utils.queues import FlowControlEvent, ThrowableQueue

    tuning.apply()

    async def scenario():
        flow = FlowControlEvent()
        queue = ThrowableQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()
        queue.put_nowait("fetched during the seek")
        flow.resume()  # the end of table recovery: flow was already on
        kept = queue.qsize()
        flow.suspend()  # a rebalance: what is queued belongs to the old assignment
        flow.resume()
        return kept, queue.qsize()

    assert asyncio.run(scenario()) == (1, 0)


def fetch_actions(asked: dict[int, list[tuple[str, int]]]):
    """What aiokafka's ``_get_actions_per_node`` returns: one FetchRequest per node for ``asked``."""
    from aiokafka.protocol.fetch import FetchRequest

    requests = []
    for node, tps in asked.items():
        by_topic: dict[str, list] = defaultdict(list)
        for topic, partition in tps:
            by_topic[topic].append((partition, 0, 1 << 20))
        requests.append((node, FetchRequest(50, 1, 1 << 20, 0, list(by_topic.items()))))
    return requests, {}, 0.2, False, []


def test_a_fetch_asking_for_every_partition_held_on_its_broker_waits_long_and_one_leaving_any_out_stays_short(
        monkeypatch):
    from aiokafka.structs import TopicPartition

    held = [TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0), TopicPartition("b", 1)]
    leaders = {TopicPartition("a", 0): 1, TopicPartition("a", 1): 1, TopicPartition("b", 0): 2,
               TopicPartition("b", 1): 2}
    asked = {1: [("a", 0), ("a", 1)], 2: [("b", 0)]}  # b-1 has records still buffered: left out
    fetcher = SimpleNamespace(_select_read_replica=leaders.get)
    get_actions = tuning.wait_long_when_nothing_is_left_out(lambda self, assignment: fetch_actions(asked), 500)
    assignment = SimpleNamespace(tps=held)
    clock = [1000.0]
    monkeypatch.setattr(tuning.time, "monotonic", lambda: clock[0])
    requests = dict(get_actions(fetcher, assignment)[0])
    assert requests[1]._max_wait_ms == 50, "a new assignment: recovery and its seeks come first"
    clock[0] += tuning.SETTLED_AFTER_S
    requests = dict(get_actions(fetcher, assignment)[0])
    assert requests[1]._max_wait_ms == 500, "nothing left out: any record ends the wait"
    assert requests[2]._max_wait_ms == 50, "b-1 joins the next request: that must come soon"
    requests = dict(get_actions(fetcher, SimpleNamespace(tps=held))[0])
    assert requests[1]._max_wait_ms == 50, "another assignment (a rebalance): short again"
