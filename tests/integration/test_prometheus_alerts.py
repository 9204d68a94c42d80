"""A real Prometheus scrapes the running workers with OpenGym's alert rules: a clean run fires no
alert, and each injected fault fires the alert that matches it, in Prometheus's own API."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
import yaml

from opengym_streams.monitoring.local_prometheus import LocalPrometheus
from opengym_streams.demo.collector import FactCollector, end_offsets
from opengym.demo.driver import Driver
from opengym.demo.facts import BookingFacts
from opengym.demo.faults import Faults
from opengym.demo.workload import WorkloadConfig, booking_event, plan_workload
from opengym_streams.demo.supervisor import COMPONENTS, OBSERVER, Supervisor
from opengym_streams.event import now_ms
from opengym_streams.kafka import create_topics, producer
from tests.conftest import wait_for
from opengym.topics import RESERVATION_COMMANDS, topic_name

WORKERS = COMPONENTS + (OBSERVER,)
RULES = [rule for group in yaml.safe_load(LocalPrometheus.rules_path().read_text())["groups"]
         for rule in group["rules"]]
FAST = {
    # Short deadlines so each fault is detected within seconds; the observer's catalog reads these.
    "OPENGYM_BOOKING_TIMEOUT_MS": "1500",
    "OPENGYM_NOTIFICATION_PROCESS_START_WITHIN_MS": "3000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def system(stack, tmp_path_factory):
    """Every component and the observer as worker processes, scraped by a real Prometheus."""
    previous = os.environ.get("OPENGYM_TOPIC_PREFIX")
    os.environ["OPENGYM_TOPIC_PREFIX"] = f"t{uuid.uuid4().hex[:10]}."
    create_topics()
    ports = {component: free_port() for component in WORKERS}
    workdir = tmp_path_factory.mktemp("alerts")
    env = {**Faults(delay_share=0.0, payment_failure_rate=0.0, tick_interval=0.25).env(), **FAST,
           "OPENGYM_TOPIC_PREFIX": os.environ["OPENGYM_TOPIC_PREFIX"]}
    supervisor = Supervisor(workdir / "workers", WORKERS, env=env,
                            env_per_component={c: {"OPENGYM_METRICS_PORT": str(p)} for c, p in ports.items()})
    prometheus = LocalPrometheus(workdir / "prometheus", {c: f"127.0.0.1:{p}" for c, p in ports.items()},
                                 port=free_port(), interval="1s")
    try:
        supervisor.start(timeout=180)
        prometheus.start()
        yield supervisor, prometheus
    finally:
        prometheus.stop()
        supervisor.stop()
        if previous is None:
            os.environ.pop("OPENGYM_TOPIC_PREFIX", None)
        else:
            os.environ["OPENGYM_TOPIC_PREFIX"] = previous


def settle_rules(prometheus: LocalPrometheus, after: float, timeout: float = 30.0) -> None:
    """Wait until every target is scraped healthy and every rule group has been evaluated since ``after``."""
    wait_for(lambda: prometheus.targets_up() and all(prometheus.targets_up().values())
             and prometheus.last_rule_evaluation() > after + 2,
             timeout, "all targets up and the rules evaluated on fresh samples",
             seen=lambda: (prometheus.targets_up(), prometheus.last_rule_evaluation(), after))


def firing(prometheus: LocalPrometheus, alertname: str, **labels) -> list[dict]:
    return [a for a in prometheus.alerts("firing") if a["labels"]["alertname"] == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())]


def seeded_plan(bookings: int, seed: int, classes: int):
    """Class-pack bookings at one gym, with their classes scheduled and packs granted."""
    plan = plan_workload(WorkloadConfig(bookings=bookings, seed=seed, gyms=1, classes_per_gym=classes,
                                        shares={"home_class_pack": 1.0}), uuid.uuid4().hex[:6])
    collector = FactCollector(end_offsets(), facts=BookingFacts())
    try:
        Driver(plan, collector).seed()
    finally:
        collector.close()
    return plan


def book(plan, bookings) -> None:
    client = producer()
    from opengym_streams.codec import AvroCodec

    codec = AvroCodec()
    name = topic_name(RESERVATION_COMMANDS)
    for booking in bookings:
        event = booking_event(plan, booking, occurred_at=now_ms())
        client.produce(name, key=event.correlation_id.encode(), value=codec.encode(event, name))
    assert client.flush(30) == 0


def record(name: str, seconds: float) -> None:
    print(f"\nALERT-TIMING {json.dumps({'alert': name, 'seconds_after_fault': round(seconds, 1)})}")


def test_a_clean_run_fires_no_alert(system):
    supervisor, prometheus = system
    plan = plan_workload(WorkloadConfig(bookings=30, seed=3, gyms=2, classes_per_gym=3), uuid.uuid4().hex[:6])
    collector = FactCollector(end_offsets(), facts=BookingFacts())
    try:
        driver = Driver(plan, collector)
        driver.seed()
        driver.send_bookings(rate=20)
        driver.settle(90)
    finally:
        collector.close()
    settled = time.time()
    settle_rules(prometheus, after=settled)
    # Several more evaluations on the settled system: still nothing pending or firing.
    wait_for(lambda: prometheus.last_rule_evaluation() > settled + 6, 30, "six more rule evaluations")
    assert prometheus.alerts("firing") == []
    # A rule with a for-duration may be pending for a moment while counters first appear (a rate needs
    # two samples); a rule without one would already be firing, so none of those may be pending.
    immediate = {r["alert"] for r in RULES if "for" not in r}
    assert [a["labels"]["alertname"] for a in prometheus.alerts("pending")
            if a["labels"]["alertname"] in immediate] == []
    observed = prometheus.api("query?query=sum(opengym_observer_events_total)")["result"]
    assert observed and float(observed[0]["value"][1]) > 0, "the observer was scraped and saw the run"


def test_dead_letters_fire_the_dead_letter_alert_for_that_component(system):
    _, prometheus = system
    client = producer()
    injected = time.time()
    for i in range(3):
        client.produce(topic_name(RESERVATION_COMMANDS), key=f"garbage-{i}".encode(), value=b"not avro at all")
    assert client.flush(30) == 0
    alerts = wait_for(lambda: firing(prometheus, "OpenGymDeadLettersGrowing", component="reservation"), 60,
                      "OpenGymDeadLettersGrowing{component=reservation} firing",
                      seen=lambda: prometheus.alerts(state=None))
    assert alerts[0]["labels"]["error_kind"] == "NOT_FRAMED"
    assert alerts[0]["labels"]["owner"] == "reservation"
    record("OpenGymDeadLettersGrowing", time.time() - injected)


def test_a_paused_notifications_worker_fires_downstream_not_started(system):
    supervisor, prometheus = system
    supervisor.workers["notifications"].env["OPENGYM_NOTIFICATIONS_PAUSED"] = "1"
    supervisor.restart("notifications", timeout=120)
    plan = seeded_plan(bookings=10, seed=5, classes=2)
    injected = time.time()
    book(plan, plan.bookings)
    alerts = wait_for(lambda: firing(prometheus, "OpenGymDownstreamNotStarted", process="NotificationProcess"),
                      90, "OpenGymDownstreamNotStarted{process=NotificationProcess} firing",
                      seen=lambda: (prometheus.alerts(state=None),
                                    prometheus.api("query?query=opengym_anomalies_total")["result"],
                                    prometheus.api("query?query=opengym_events_in_total")["result"]))
    assert alerts[0]["labels"]["severity"] == "page"
    assert alerts[0]["labels"]["owner"] == "notifications"  # the downstream process's owner, from the anomaly
    assert not firing(prometheus, "OpenGymDownstreamNotStarted", process="BillingRecordProcess")
    record("OpenGymDownstreamNotStarted", time.time() - injected)


def test_slow_entitlement_replies_fire_nested_timeouts(system):
    supervisor, prometheus = system
    entitlement = supervisor.workers["entitlement"]
    entitlement.env["OPENGYM_ENTITLEMENT_DELAY_SHARE"] = "1.0"
    entitlement.env["OPENGYM_ENTITLEMENT_DELAY_MS"] = "4000"
    supervisor.restart("entitlement", timeout=120)
    plan = seeded_plan(bookings=4, seed=9, classes=1)
    injected = time.time()
    book(plan, plan.bookings)
    alerts = wait_for(lambda: firing(prometheus, "OpenGymNestedTimeouts", process="InstrumentConsumeProcess"), 90,
                      "OpenGymNestedTimeouts{process=InstrumentConsumeProcess} firing",
                      seen=lambda: prometheus.alerts(state=None))
    assert alerts[0]["labels"]["owner"] == "entitlement"  # the nested pair's participant, from the anomaly
    record("OpenGymNestedTimeouts", time.time() - injected)
