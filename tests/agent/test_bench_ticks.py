"""The tick benchmark's own check: the due index and the full scan it replaced agree on what is due."""

from opengym_streams.bench import ticks


def test_the_due_index_finds_exactly_the_waiting_bookings_the_full_scan_finds():
    result = ticks.measure(finished=500, waiting=20, rounds=1)
    assert result["finished"] == 500 and result["waiting"] == 20
    assert result["scan_ms_per_tick"] > 0 and result["index_ms_per_tick"] > 0
