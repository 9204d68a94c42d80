"""Consumer lag from a Faust consumer's view: high watermark minus committed offset, per input partition."""

from collections import defaultdict, namedtuple
from types import SimpleNamespace

from opengym_streams.monitoring.lag import record_consumer_lag
from opengym_streams.monitoring.metrics import CONSUMER_LAG


tp = namedtuple("TP", "topic partition")


class FakeConsumer:
    def __init__(self, highwaters, committed):
        self._highwaters = highwaters
        self._committed_offset = defaultdict(lambda: None, committed)

    def assignment(self):
        return set(self._highwaters)

    def highwater(self, partition):
        return self._highwaters[partition]


def test_lag_is_highwater_minus_committed_and_changelogs_are_left_out():
    a, b, log = tp("t.commands", 0), tp("t.commands", 1), tp("app-bookings-changelog", 0)
    consumer = FakeConsumer({a: 120, b: 7, log: 500}, {a: 100, b: 7, log: 3})
    lags = record_consumer_lag(SimpleNamespace(consumer=consumer), "reservation")
    assert lags == {("t.commands", 0): 20, ("t.commands", 1): 0}
    assert CONSUMER_LAG.labels("reservation", "t.commands", "0")._value.get() == 20


def test_a_partition_with_nothing_committed_lags_by_its_whole_log():
    a = tp("t.events", 2)
    lags = record_consumer_lag(SimpleNamespace(consumer=FakeConsumer({a: 9}, {})), "finance")
    assert lags == {("t.events", 2): 9}
