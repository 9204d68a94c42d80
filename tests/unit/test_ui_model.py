"""The transaction view's data, computed from observer states: lists filter and search, one transaction
shows its tree, facts, anomalies and timeline; anomalies link to their alert and runbook section."""

from __future__ import annotations

from pathlib import Path

from opengym.agents.system import processes as build
from opengym.demo import scenarios
from opengym_streams.observer import Observer, ObserverConfig, ObserverState
from opengym_streams.ui import model
from opengym_streams.ui.links import alerts_by_kind, anchor, render_markdown
from opengym_streams.ui.pages import KINDS

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000
CONFIG = ObserverConfig(grace_ms=1000, orphan_grace_ms=5000, retention_ms=600_000, idle_ms=3_600_000)


def held(*bookings: tuple[str, str], now: int = T0 + 200_000) -> tuple[Observer, dict[str, dict], int]:
    state = ObserverState(Observer(build(), CONFIG))
    for booking_id, scenario in bookings:
        for offset, event in enumerate(scenarios.booking(booking_id, T0, scenario)):
            state.observer  # noqa: B018
            outcome = state.observer.on_event(state.states.get(booking_id), event, 0, ("topic", 0, offset))
            state.states[booking_id] = outcome.state
    for cid, s in state.states.items():
        state.observer.on_tick(s, cid, now)
    return state.observer, state.states, now


def listed(observer, states, now, **filters) -> list[str]:
    return [r["correlation_id"] for r in model.transactions(observer, states.items(), now,
                                                           model.Filters(**filters))["rows"]]


def test_lists_filter_by_status_kind_and_process():
    observer, states, now = held(("b-clean", scenarios.CLEAN), ("b-timeout", scenarios.NESTED_TIMEOUT),
                                 ("b-stalled", scenarios.SETTLEMENT_STALLED),
                                 ("b-open", scenarios.ATTENDANCE_NEVER_COMPLETED))
    assert set(listed(observer, states, now)) == {"b-clean", "b-timeout", "b-stalled", "b-open"}
    assert set(listed(observer, states, now, status="anomalous")) == {"b-timeout", "b-stalled"}
    assert listed(observer, states, now, kind="CHAIN_STALLED") == ["b-stalled"]
    assert set(listed(observer, states, now, process="PartnerVisitSettlement")) == {"b-stalled"}
    assert listed(observer, states, now, status="open") == ["b-open"]
    # Closed: every expectation met or reported; anomalous ones that ended are closed too.
    assert set(listed(observer, states, now, status="closed")) == {"b-clean", "b-timeout", "b-stalled"}
    assert listed(observer, states, now, min_age_s=100) == ["b-open"]


def test_a_search_by_member_or_settlement_id_finds_the_booking():
    observer, states, now = held(("b-1", scenarios.CLEAN), ("b-2", scenarios.CLEAN_PARTNER))
    assert listed(observer, states, now, q="m-b-2") == ["b-2"]
    assert listed(observer, states, now, q="s-b-2") == ["b-2"]
    assert listed(observer, states, now, q="nobody") == []


def test_a_list_cut_at_its_limit_says_how_many_matched():
    observer, states, now = held(*((f"b-{i}", scenarios.CLEAN) for i in range(5)))
    data = model.transactions(observer, states.items(), now, model.Filters(limit=2))
    assert (data["shown"], data["matched"], len(data["rows"])) == (2, 5, 2)


def test_one_transaction_shows_the_overdue_nested_pair_its_facts_and_a_timeline():
    observer, states, now = held(("b-timeout", scenarios.NESTED_TIMEOUT))
    t = model.transaction(observer, "b-timeout", states["b-timeout"], now)
    nested = next(p for p in t["processes"] if p["level"] == "nested")
    assert nested["process"] == "InstrumentConsumeProcess" and nested["owner"] == "entitlement"
    assert [e["status"] for e in nested["expectations"]] == ["overdue"]
    assert [f["type"] for f in t["facts"]] == ["BookClassRequested", "InstrumentConsumeRequested",
                                               "ReservationRejected"]
    assert all(f["topic"] == "topic" and f["offset"] is not None for f in t["facts"])
    assert t["anomalies"] == [{"kind": "NESTED_TIMEOUT", "process": "InstrumentConsumeProcess",
                               "occurrence": t["facts"][1]["event_id"], "expected": nested["expectations"][0]["expected"],
                               "since": T0, "deadline": nested["expectations"][0]["deadline"], "owner": "entitlement"}]
    assert [x["what"] for x in t["timeline"]].count("deadline (overdue)") == 1


def test_the_overview_counts_in_flight_and_the_anomalies_of_the_last_hour():
    observer, states, now = held(("b-open", scenarios.ATTENDANCE_NEVER_COMPLETED), now=T0 + 1000)

    class A:
        def __init__(self, kind, at):
            self.kind, self.detected_at = type("K", (), {"value": kind})(), at

    ov = model.overview(observer, list(states.values()), now, [A("NESTED_TIMEOUT", now - 10), A("LATE_REPLY", now - 2 * 3_600_000)])
    assert ov.in_flight["Member Books a Class"] == 1
    assert ov.anomalies_last_hour == {"NESTED_TIMEOUT": 1}


def test_every_anomaly_kind_links_to_an_alert_with_a_runbook_section():
    alerts = alerts_by_kind(ROOT / "monitoring" / "prometheus" / "alerts.yml")
    assert set(KINDS) <= set(alerts)
    html = render_markdown((ROOT / "docs" / "runbook.md").read_text())
    for kind in KINDS:
        assert f'id="{anchor(alerts[kind])}"' in html, kind
    assert anchor("OpenGymNestedTimeouts") == "opengymnestedtimeouts"


def test_the_catalog_diagrams_are_mermaid_flowcharts():
    diagrams = model.mermaid(build())
    assert len(diagrams) == 2 and [d.split("\n")[0] for d in diagrams] == ["flowchart TD", "flowchart LR"]


def test_the_transaction_page_reads_as_the_three_level_tree():
    import re

    from opengym_streams.ui import pages

    observer, states, now = held(("b-1", scenarios.CLEAN_PARTNER))
    html = pages.transaction(model.transaction(observer, "b-1", states["b-1"], now), [], [], pages.Links({}, None))
    levels = re.findall(r"class=level>(\w+)</span>", html)
    assert levels == ["ORCHESTRATION", "NESTED", "TERMINAL", "DOWNSTREAM", "DOWNSTREAM", "DOWNSTREAM", "CHOREOGRAPHY"]


def test_every_value_a_page_prints_is_escaped():
    from opengym_streams.ui import pages

    observer, states, now = held(("<img src=x onerror=alert(1)>", scenarios.NESTED_TIMEOUT))
    cid = next(iter(states))
    html = pages.transaction(model.transaction(observer, cid, states[cid], now), [], [], pages.Links({}, None))
    listing = pages.transactions(model.transactions(observer, states.items(), now, model.Filters()),
                                 model.Filters(q=cid), [])
    for page in (html, listing):
        assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_list_row_is_computed_again_only_when_its_state_changed_and_its_age_follows_the_clock(monkeypatch):
    observer, states, now = held(("b-1", scenarios.ATTENDANCE_NEVER_COMPLETED), ("b-2", scenarios.CLEAN))
    cache: dict = {}
    first = model.transactions(observer, states.items(), now, model.Filters(), cache)["rows"]
    calls = []
    original = model.row
    monkeypatch.setattr(model, "row", lambda *args: calls.append(args[2]) or original(*args))
    later = model.transactions(observer, states.items(), now + 60_000, model.Filters(), cache)["rows"]
    assert calls == [], "no state changed: every row from the cache"
    assert {r["correlation_id"]: r["age_s"] for r in later} == {r["correlation_id"]: r["age_s"] + 60 for r in first}
    states["b-1"] = {**states["b-1"]}  # a new fact replaces the state
    model.transactions(observer, states.items(), now, model.Filters(), cache)
    assert calls == ["b-1"]


def test_the_overview_shows_the_gauges_last_export_when_given_it():
    observer, states, now = held(("b-open", scenarios.ATTENDANCE_NEVER_COMPLETED), now=T0 + 1000)
    exported = ({"Member Books a Class": 7}, {("Member Books a Class", "BookingOrchestration"): 3.0})
    ov = model.overview(observer, list(states.values()), now, [], in_flight_now=exported)
    assert ov.in_flight == {"Member Books a Class": 7}, "the gauges' numbers, not a walk of every state"
    assert ov.held == 1
