"""What the transaction view needs from the observer's state: where each fact was read, the business ids
to search by, the owner at fault on every anomaly; and states written before any of that still load."""

from __future__ import annotations

import copy
import json
import random

import pytest

from opengym.agents.system import processes as build
from opengym.demo import scenarios
from opengym_streams.observer import IDS, Observer, ObserverConfig, business_ids, fact_source, new_state

T0 = 1_700_000_000_000
CONFIG = ObserverConfig(grace_ms=1000, orphan_grace_ms=5000, retention_ms=60_000, idle_ms=3_600_000)
LATER = T0 + 3 * 24 * 3_600_000


def feed(events, with_sources=True, found=None):
    observer = Observer(build(), CONFIG)
    state = None
    for offset, event in enumerate(events):
        source = ("t.opengym.x.events", offset % 4, offset) if with_sources else None
        outcome = observer.on_event(state, event, 0, source)
        state = outcome.state or state
        if found is not None:
            found += outcome.anomalies
    return observer, state


def test_each_fact_keeps_the_topic_partition_and_offset_it_was_read_at():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN)
    _, state = feed(events)
    sources = sorted(fact_source(f) for facts in state["f"].values() for f in facts)
    assert sources == sorted(("t.opengym.x.events", i % 4, i) for i in range(len(events)))


def test_the_business_ids_of_every_fact_are_searchable_and_order_does_not_matter():
    events = scenarios.booking("b-1", T0, scenarios.CLEAN_PARTNER)
    _, forward = feed(events)
    shuffled = list(events)
    random.Random(4).shuffle(shuffled)
    _, backward = feed(shuffled)
    ids = business_ids(forward)
    assert ids["member_id"] == ["m-b-1"] and ids["class_id"] == ["c-b-1"] and ids["settlement_id"] == ["s-b-1"]
    assert json.dumps(business_ids(forward), sort_keys=True) == json.dumps(business_ids(backward), sort_keys=True)
    assert len(json.dumps(forward)) < 4000, "the state stays small: it is written to a changelog"


def test_a_state_written_before_sources_and_ids_existed_loads_and_judges_the_same():
    events = scenarios.booking("b-1", T0, scenarios.SETTLEMENT_STALLED)
    observer, new = feed(events)
    old = copy.deepcopy(new)
    old.pop(IDS)
    for facts in old["f"].values():
        for fact in facts:
            del fact[4:]  # the four-element fact record of earlier versions
    old = json.loads(json.dumps(old))
    assert [fact_source(f) for f in old["f"]["BookClassRequested"]] == [None]
    assert business_ids(old) == {}
    found_old = observer.on_tick(old, "b-1", LATER).anomalies
    found_new = observer.on_tick(new, "b-1", LATER).anomalies
    assert [a.anomaly_id for a in found_old] == [a.anomaly_id for a in found_new] != []
    # A fact arriving now at an old state is recorded the new way beside the old ones.
    late = scenarios.booking("b-1", T0, scenarios.CLEAN_PARTNER)[-1]
    outcome = observer.on_event(old, late, LATER, ("t", 0, 99))
    assert fact_source(outcome.state["f"][late.type_name][-1]) == ("t", 0, 99)


@pytest.mark.parametrize("scenario, owner", [
    (scenarios.NESTED_TIMEOUT, {"entitlement"}),
    (scenarios.LATE_REPLY, {"entitlement"}),
    (scenarios.ORPHAN_REPLY, {"entitlement"}),
    (scenarios.NOTIFICATION_NEVER_STARTED, {"notifications"}),
    (scenarios.ATTENDANCE_NEVER_COMPLETED, {"attendance"}),
    # The chain stalls waiting for PaymentSettled | PaymentFailed: finance's hop.
    (scenarios.SETTLEMENT_STALLED, {"finance"}),
])
def test_every_anomaly_names_the_component_that_owns_the_process_at_fault(scenario, owner):
    found = []
    observer, state = feed(scenarios.booking("b-1", T0, scenario), with_sources=False, found=found)
    found += observer.on_tick(state, "b-1", LATER).anomalies
    assert found and {a.process_owner for a in found} == owner


def test_a_chain_stalled_before_billing_reacted_names_platform_billing():
    events = [e for e in scenarios.booking("b-1", T0, scenarios.CLEAN_PARTNER)
              if e.type_name not in ("SettlementObligationCalculated", "PaymentInitiated", "PaymentSettled",
                                     "SettlementConfirmed")]
    observer, state = feed(events, with_sources=False)
    found = [a for a in observer.on_tick(state, "b-1", LATER).anomalies if a.kind.value == "CHAIN_STALLED"]
    assert [a.process_owner for a in found] == ["platform-billing"]


def test_new_state_has_no_ids_until_a_fact_brings_some():
    assert IDS not in new_state()
