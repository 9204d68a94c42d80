"""The ownership test as code: OpenGym's catalog passes; each kind of broken catalog fails with one clear line."""

from __future__ import annotations

import dataclasses

import pytest

from opengym import topics
from opengym.agents.system import SYSTEM
from opengym.agents.system import processes as build
from opengym_streams.catalog import Catalog, Choreography, Fact, Step, succeeds
from opengym_streams.catalog_check import check, check_subscriptions, load_subscriptions
from opengym_streams.catalog_docs import DOCS_PATH, default_catalog, render
from opengym_streams.commands.catalog import _check
from opengym_streams.observe import outputs
from opengym.topics import Topic

OBSERVER_OUTPUTS = outputs(SYSTEM)


@pytest.fixture
def catalog() -> Catalog:
    return build()


def booking_with(catalog: Catalog, **changes) -> Catalog:
    booking = catalog.transactions[0]
    return dataclasses.replace(catalog, transactions=(dataclasses.replace(booking, **changes),
                                                      *catalog.transactions[1:]))


def orchestration_with(catalog: Catalog, **changes) -> Catalog:
    return booking_with(catalog, orchestration=dataclasses.replace(catalog.transactions[0].orchestration, **changes))


def test_opengyms_catalog_passes_the_ownership_test(catalog):
    assert check(catalog, observer_outputs=OBSERVER_OUTPUTS) == []


def test_catalog_check_command_exits_zero_and_says_ok(capsys):
    assert _check(None) == 0
    assert "catalog OK" in capsys.readouterr().out


def test_a_process_name_with_two_owners_is_one_violation(catalog):
    billing = catalog.transactions[0].downstream[0]
    twin = dataclasses.replace(billing, owner="attendance", start="AttendancePending",
                               completion="AttendancePending")
    problems = check(booking_with(catalog, downstream=catalog.transactions[0].downstream + (twin,)))
    assert problems == ["process BillingRecordProcess: has 2 owners (attendance, tenant-billing); exactly one "
                        "component owns a process"]


def test_an_owner_that_is_not_a_component_is_reported(catalog):
    proc = dataclasses.replace(catalog.transactions[0].downstream[2], owner="marketing")
    downstream = catalog.transactions[0].downstream[:2] + (proc,)
    problems = check(booking_with(catalog, downstream=downstream))
    assert any(p.startswith("Member Books a Class / NotificationProcess: owner 'marketing' is not a component")
               for p in problems), problems


def test_requesting_from_an_undeclared_participant_is_reported(catalog):
    finance_requests = Topic("opengym.finance.requests", "finance", ("opengym.finance.PaymentInitiated",),
                             kind="requests", producers=("reservation",))
    problems = check(catalog, topics=topics.ALL_TOPICS + (finance_requests,))
    assert "Member Books a Class / BookingOrchestration: 'reservation' may write requests to " \
           "opengym.finance.requests (owned by 'finance'), which is not a declared participant of " \
           "BookingOrchestration" in problems


def with_step(catalog: Catalog, index: int, **changes) -> Catalog:
    steps = list(catalog.transactions[0].orchestration.steps)
    steps[index] = dataclasses.replace(steps[index], **changes)
    return orchestration_with(catalog, steps=tuple(steps))


def test_a_nested_pair_whose_participant_is_the_orchestrator_is_not_nested(catalog):
    problems = check(with_step(catalog, 1, participant="reservation"))
    assert any("participant is the orchestration's own owner 'reservation'" in p for p in problems), problems


def test_an_event_without_a_contract_is_reported(catalog):
    consume = catalog.transactions[0].orchestration.steps[1]
    problems = check(with_step(catalog, 1, replies=consume.replies + (succeeds("InstrumentConsumeIgnored"),)))
    assert "event InstrumentConsumeIgnored: named by the catalog but has no contract under schemas/" in problems


def test_a_facts_topic_with_two_producers_is_reported(catalog):
    shared = dataclasses.replace(topics.FINANCE_EVENTS, producers=("finance", "platform-billing"))
    all_topics = tuple(shared if t is topics.FINANCE_EVENTS else t for t in topics.ALL_TOPICS)
    problems = check(catalog, topics=all_topics)
    assert "topic opengym.finance.events: facts topic written by finance, platform-billing; only its owner " \
           "'finance' may produce facts on it" in problems


def test_a_consumed_topic_nobody_produces_is_reported(catalog):
    closed = dataclasses.replace(topics.RESERVATION_COMMANDS, producers=("reservation",))
    all_topics = tuple(closed if t is topics.RESERVATION_COMMANDS else t for t in topics.ALL_TOPICS)
    problems = check(catalog, topics=all_topics)
    assert "topic opengym.reservation.commands: 'reservation' consumes BookClassRequested from it, but no " \
           "process produces it and no external producer may write it" in problems


def test_a_choreography_with_one_producer_should_be_an_orchestration(catalog):
    chain = Choreography("SoloChain", facts=(
        Fact(("PaymentInitiated",), "finance", stall_after_ms=1000),
        Fact(("PaymentSettled", "PaymentFailed"), "finance")))
    extra = dataclasses.replace(catalog.transactions[1], name="Solo", choreography=chain)
    problems = check(dataclasses.replace(catalog, transactions=catalog.transactions + (extra,)))
    assert "Solo / SoloChain: every fact comes from 'finance'; one owner means it should be an orchestration, " \
           "not a choreography" in problems


def test_an_observer_that_may_write_a_business_topic_is_reported(catalog):
    leaky = dataclasses.replace(topics.RESERVATION_COMMANDS, producers=("external", "reservation", "correlation"))
    all_topics = tuple(leaky if t is topics.RESERVATION_COMMANDS else t for t in topics.ALL_TOPICS)
    problems = check(catalog, topics=all_topics)
    assert any(p.startswith("observer 'correlation' may write opengym.reservation.commands") for p in problems), \
        problems


def test_an_observer_output_outside_its_own_topics_is_reported(catalog):
    problems = check(catalog, observer_outputs=(topics.CORRELATION_ANOMALIES, topics.RESERVATION_EVENTS))
    assert problems == ["observer 'correlation' publishes to opengym.reservation.events, which it is not a "
                        "declared writer of (writers: reservation)"]


def test_a_process_owned_by_the_observer_is_reported(catalog):
    orch = catalog.transactions[0].orchestration
    peek = Step("Peek", participant="correlation", request="InstrumentConsumeRequested", ask=None,
                replies=(succeeds("InstrumentReleased"),), waits_in="PEEKING", deadline_ms=1, on_timeout=None,
                process="Peek")
    problems = check(orchestration_with(catalog, steps=orch.steps + (peek,)))
    assert any("owned by the observer 'correlation'" in p for p in problems), problems


def test_every_catalog_event_has_a_role_and_durations_follow_the_environment(monkeypatch):
    monkeypatch.setenv("OPENGYM_NOTIFICATION_PROCESS_START_WITHIN_MS", "1234")
    monkeypatch.setenv("OPENGYM_BOOKING_TIMEOUT_MS", "777")
    catalog = build()
    assert catalog.transactions[0].downstream[2].start_within_ms == 1234
    assert catalog.nested_pair("InstrumentConsumeProcess").deadline_ms == 777
    assert default_catalog().transactions[0].downstream[2].start_within_ms == 30_000


def test_docs_catalog_md_is_up_to_date():
    assert DOCS_PATH.exists(), "run `opengym catalog docs`"
    assert DOCS_PATH.read_text() == render(default_catalog()), "docs/catalog.md is stale: run `opengym catalog docs`"


def test_docs_draw_the_three_levels_of_each_business_transaction():
    text = render(default_catalog())
    assert text.count("```mermaid") == 2
    for node in ("ORCHESTRATION BookingOrchestration", "NESTED InstrumentConsumeProcess", "TERMINAL",
                 "DOWNSTREAM NotificationProcess", "CHOREOGRAPHY PartnerVisitSettlement"):
        assert node in text


def test_every_component_app_reads_what_the_catalog_says_it_reacts_to(catalog):
    subscriptions = load_subscriptions(SYSTEM)
    assert check_subscriptions(catalog, subscriptions) == []
    assert "opengym.reservation.events" in subscriptions["notifications"]


def test_a_component_that_does_not_read_its_trigger_is_reported(catalog):
    subscriptions = load_subscriptions(SYSTEM)
    deaf = {**subscriptions, "notifications": set()}
    assert check_subscriptions(catalog, deaf) == [
        "notifications: the catalog says it reacts to ReservationConfirmed, but its app reads no topic that "
        "carries it (opengym.reservation.events)"]


def test_a_component_reading_an_undeclared_topic_is_reported(catalog):
    subscriptions = {**load_subscriptions(SYSTEM), "finance": {"opengym.finance.secret"}}
    problems = check_subscriptions(catalog, subscriptions)
    assert "finance: its app reads opengym.finance.secret, which the topic catalog does not declare" in problems


def test_a_topic_nobody_reads_or_nobody_writes_is_reported(catalog):
    ghost = Topic("opengym.finance.clock", "finance", (topics.CLOCK,), kind="commands",
                  doc="declared, written by nobody the catalog knows, read by nobody")
    problems = check_subscriptions(catalog, load_subscriptions(SYSTEM), topics.ALL_TOPICS + (ghost,))
    assert problems == [
        "topic opengym.finance.clock: nothing the catalog declares is published on it and no external producer may "
        "write it", "topic opengym.finance.clock: no component reads it"]
