"""The two Faust patches the workers run with (streams/tuning.py)."""

from collections import defaultdict
from types import SimpleNamespace

from faust.transport.consumer import Consumer

from streams import tuning


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
