"""Faust settings the workers run with and the patches streams/tuning.py applies to Faust and aiokafka."""

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer

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
    def __init__(self, generation: int, offset: int):
        self.generation_id, self.offset = generation, offset
        self.acked, self.tp, self.topic = False, ("t", 0), "t"


def message(generation: int, offset: int) -> Message:
    return Message(generation, offset)


def test_the_patched_ack_refuses_a_skipped_message():
    tuning.apply()
    consumer = consumer_state(generation=2)
    stale = message(generation=1, offset=7)
    assert Consumer.ack(consumer, stale) is False
    assert stale.acked is False and consumer._acked[("t", 0)] == [], "the commit cannot move past it"


def test_the_patched_ack_still_acks_a_delivered_message():
    tuning.apply()
    consumer = consumer_state(generation=2)
    delivered = message(generation=2, offset=7)
    assert Consumer.ack(consumer, delivered) is True
    assert delivered.acked is True and consumer._acked[("t", 0)] == [7]


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
