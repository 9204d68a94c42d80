"""`opengym trace` rendering: the three-level tree with status, timings and what is still expected."""

from __future__ import annotations

from opengym.agents.system import processes as build
from opengym.demo import scenarios
from opengym_streams.commands.trace import as_json, build_state, render
from opengym_streams.observer import Observer, ObserverConfig

T0 = 1_700_000_000_000


def observer() -> Observer:
    return Observer(build(), ObserverConfig())


def test_a_booking_in_flight_shows_each_level_and_what_is_still_expected():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN)
    confirmed_at = events[3].occurred_at
    state = build_state(observer(), events[:6])  # billing and attendance started, no notification yet
    text = render(observer(), state, "b-1", confirmed_at + 10_000)
    lines = text.splitlines()
    assert lines[1] == "Member Books a Class"
    assert lines[2].startswith("  ORCHESTRATION BookingOrchestration (owner reservation): done -> ReservationConfirmed")
    assert lines[3].startswith("    NESTED InstrumentConsumeProcess (owner entitlement): done -> InstrumentConsumed")
    assert any(line.startswith("  TERMINAL ReservationConfirmed at ") for line in lines)
    notification = next(i for i, line in enumerate(lines) if "DOWNSTREAM NotificationProcess" in line)
    assert "in flight" in lines[notification] or "[started -]" in lines[notification]
    assert "still expected: NotificationSent from notifications" in lines[notification + 1]
    assert "in 20.0 s" in lines[notification + 1]


def test_a_stalled_settlement_shows_the_overdue_hop_and_the_reported_anomaly():
    events = scenarios.booking("b-2", T0, scenarios.SETTLEMENT_STALLED)
    obs = observer()
    state = build_state(obs, events)
    now = events[-1].occurred_at + 200_000
    text = render(obs, state, "b-2", now)
    assert "CHOREOGRAPHY PartnerVisitSettlement (no owner): anomalous" in text
    assert "OVERDUE: PaymentSettled | PaymentFailed from finance" in text
    tree = as_json(obs, state, now)
    chain = next(p for p in tree["processes"] if p["level"] == "choreography")
    assert [e["status"] for e in chain["expectations"]] == ["met", "met", "overdue"]
