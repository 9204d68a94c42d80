"""The demo summary's arithmetic: outcomes, credits, percentiles, throughput."""

from opengym.demo.facts import BookingFacts as Facts
from opengym.demo.summary import percentile, render, summarize
from tests.unit.test_demo_invariants import T0, confirmed_booking, grant, rejected_booking, scheduled


def test_nearest_rank_percentiles():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None


def test_summary_counts_outcomes_credits_latency_and_throughput():
    events = [scheduled(), grant(), grant("m2", "UNLIMITED", "i2")]
    events += confirmed_booking("b1", at=T0, latency=100)
    events += confirmed_booking("b2", member="m2", kind="UNLIMITED", instrument="i2", at=T0 + 1000, latency=300)
    events += rejected_booking("b3", reason="CLASS_FULL", at=T0 + 2000, latency=10)
    events += rejected_booking("b4", reason="CREDITS_EXHAUSTED", at=T0 + 3000, latency=990)
    summary = summarize(Facts(events), intents={"b1": "home_class_pack", "b2": "home_unlimited",
                                                "b3": "full_class", "b4": "exhausted_pack"})
    assert summary.bookings == 4
    assert summary.outcomes == {"confirmed": 2, "rejected:CLASS_FULL": 1, "rejected:CREDITS_EXHAUSTED": 1}
    assert summary.intents["full_class"] == {"rejected:CLASS_FULL": 1}
    assert summary.credits["class_pack_consumed"] == 1
    assert summary.credits["net_class_pack_credits"] == summary.credits["confirmed_class_pack_bookings"] == 1
    assert summary.latency_ms["p50"] == 100 and summary.latency_ms["max"] == 990
    assert summary.span_s == 3.99
    assert abs(summary.throughput - 4 / 3.99) < 1e-9
    assert summary.downstream["BillingLineRecorded"] == 2
    table = render(summary)
    assert "rejected  CLASS_FULL" in table and "Invariants" in table and "all hold" in table


def test_summary_shows_violations():
    summary = summarize(Facts(rejected_booking("b1")), violations=["booking b1: something"])
    assert "1 VIOLATED" in render(summary) and "booking b1: something" in render(summary)


def test_summary_counts_the_observers_anomalies_about_these_bookings_only():
    from opengym_streams.models import AnomalyDetected

    def anomaly(correlation_id, kind):
        return AnomalyDetected.new(correlation_id=correlation_id, anomaly_id=f"{correlation_id}/{kind}", kind=kind,
                                   business_transaction="Member Books a Class", process="InstrumentConsumeProcess",
                                   expected="InstrumentConsumed", since=T0, deadline=T0 + 5000, detected_at=T0 + 5100)

    events = rejected_booking("b1", reason="ENTITLEMENT_TIMEOUT") + [
        anomaly("b1", "NESTED_TIMEOUT"), anomaly("b1", "LATE_REPLY"), anomaly("other-run", "NESTED_TIMEOUT")]
    summary = summarize(Facts(events))
    assert summary.anomalies == {"NESTED_TIMEOUT": 1, "LATE_REPLY": 1}
    assert "Observer anomalies" in render(summary)
