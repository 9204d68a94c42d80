"""The secured stack (``opengym stack up --secure``): SASL_SSL with SCRAM users, ownership enforced by
the broker's ACLs (``opengym acl``), and a registry that wants credentials from Keycloak.

The secured stack has its own ports and state, so it runs beside the open one. This module starts it
(a session fixture) and stops it at the end unless OPENGYM_KEEP_STACK is set or it was running already.
Each fixture below works on its own topic prefix, with the ACL plan applied for that prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from opengym import topics
from opengym_streams import acl as acl_mod
from opengym_streams import stack as stack_mod
from opengym_streams.codec import AvroCodec, build_event, registry_client
from opengym_streams.commands.acl import current_plan
from opengym_streams.commands.stack import stack_users
from opengym_streams.demo.supervisor import COMPONENTS, OBSERVER, Supervisor, log_tail
from opengym_streams.event import now_ms
from opengym_streams.kafka import admin, consumer, create_topics, producer
from opengym_streams.security import AuthenticationFailed, aiokafka_kwargs, java_client_properties, registry_refusal
from opengym_streams.settings import CCOMPAT_PATH, REPO_ROOT
from tests.conftest import wait_for
from tests.integration.e2e_support import delete_prefixed_topics, drive, small_plan, worker_env
from opengym.demo.faults import Faults
from opengym.models import InstrumentConsumed, InstrumentKind
from opengym.topics import topic_name

OPENGYM = [sys.executable, "-m", "opengym_streams.cli"]


@pytest.fixture(scope="session")
def secure_stack():
    """The secured stack, started here unless it runs already (then reused and left running)."""
    started = time.monotonic()
    result = stack_mod.up(secure=True, users=stack_users())
    layout = stack_mod.layout_for(secure=True)
    print(f"\nsecured stack: {result} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    yield layout
    if any(state == "started" for state in result.values()) and not os.environ.get("OPENGYM_KEEP_STACK"):
        stack_mod.down(secure=True)


def secured_prefix(layout, patch: pytest.MonkeyPatch) -> str:
    """Point this process at the secured stack as its super user, on a fresh topic prefix with the
    catalog's topics and the ACL plan for them."""
    prefix = f"s{uuid.uuid4().hex[:10]}."
    for name, value in stack_mod.client_env(layout).items():
        patch.setenv(name, value)
    patch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
    create_topics()
    acl_mod.apply(current_plan(), admin())
    return prefix


def cleanup(prefix: str) -> None:
    acl_mod.revoke(current_plan(), admin())
    delete_prefixed_topics(prefix)


@pytest.fixture(scope="module")
def secured(secure_stack):
    with pytest.MonkeyPatch.context() as patch:
        prefix = secured_prefix(secure_stack, patch)
        yield secure_stack
        cleanup(prefix)


def opengym(*args, env=None, stdin=None, timeout=60):
    return subprocess.run(OPENGYM + list(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def as_user(layout, user: str) -> dict[str, str]:
    """Environment overrides that make a child process log in as ``user``."""
    return {"OPENGYM_SASL_USERNAME": user, "OPENGYM_SASL_PASSWORD_FILE": str(layout.kafka_credentials / user)}


def produce_as(component: str, topic, value: bytes = b"x") -> KafkaError | None:
    """Produce one record as ``component``'s principal; the delivery error, or None when stored."""
    errors: list = []
    client = producer(component=component, **{"message.timeout.ms": 10000})
    client.produce(topic_name(topic), key=b"k", value=value, on_delivery=lambda err, msg: errors.append(err))
    client.flush(15)
    assert len(errors) == 1, f"no delivery report for {topic.name} within 15s"
    return errors[0]


def booking_json(booking_id: str) -> str:
    return json.dumps({"type": "BookClassRequested", "booking_id": booking_id, "member_id": "m-1",
                       "class_id": "c-1"})


# ---- connections ----------------------------------------------------------------------------------


def test_produce_as_an_outside_producer_and_consume_through_the_cli_over_sasl_ssl(secured):
    booking_id = f"b-{uuid.uuid4().hex[:8]}"
    sent = opengym("produce", booking_json(booking_id), env=as_user(secured, topics.EXTERNAL))
    assert sent.returncode == 0, sent.stderr
    read = opengym("consume", topic_name(topics.RESERVATION_COMMANDS))
    assert read.returncode == 0, read.stderr
    events = [json.loads(line) for line in read.stdout.splitlines()]
    assert [e["booking_id"] for e in events if e["type"] == "BookClassRequested"] == [booking_id]


def test_aiokafka_reads_over_tls_and_scram_what_confluent_kafka_wrote_with_the_authenticated_registry(secured):
    import asyncio

    from aiokafka import AIOKafkaConsumer

    codec = AvroCodec()  # the registry client with credentials from the environment
    name = topic_name(topics.RESERVATION_COMMANDS)
    booking_id = f"b-{uuid.uuid4().hex[:8]}"
    event = build_event(json.loads(booking_json(booking_id)) | {"correlation_id": booking_id})
    writer = producer()
    writer.produce(name, key=booking_id.encode(), value=codec.encode(event, name))
    assert writer.flush(15) == 0

    async def read_back() -> list[str]:
        reader = AIOKafkaConsumer(name, bootstrap_servers=os.environ["OPENGYM_BOOTSTRAP"],
                                  auto_offset_reset="earliest", group_id=None, **aiokafka_kwargs())
        await reader.start()
        try:
            found: list[str] = []
            deadline = time.monotonic() + 30
            while booking_id not in found and time.monotonic() < deadline:
                for records in (await reader.getmany(timeout_ms=1000)).values():
                    found += [codec.decode(r.value).booking_id for r in records]
            return found
        finally:
            await reader.stop()

    assert booking_id in asyncio.run(read_back())


def test_kafkas_java_tools_connect_with_the_same_settings(secured, tmp_path):
    """What the benchmark baselines do: Kafka's own tools, given java_client_properties() as a config file."""
    config = tmp_path / "client.properties"
    stack_mod._write_private(config, "".join(f"{k}={v}\n" for k, v in java_client_properties().items()))
    libs = secured.kafka_libs
    listed = subprocess.run(
        [stack_mod._java(), f"-Dlog4j2.configurationFile={libs / 'log4j2.xml'}", "-cp", f"{libs}/*",
         "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", os.environ["OPENGYM_BOOTSTRAP"], "--list",
         "--command-config", str(config)], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-1000:]
    assert topic_name(topics.RESERVATION_COMMANDS) in listed.stdout.split()


def test_the_registry_wants_credentials_and_read_only_credentials_cannot_register(secured):
    url = f"{secured.profile.registry}{CCOMPAT_PATH}"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{url}/subjects", timeout=10)
    assert anonymous.value.code == 401

    started = time.monotonic()
    wrong = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"{stack_mod.REGISTRY_CLIENT}:not-the-secret"})
    with pytest.raises(SchemaRegistryError) as refused:
        wrong.get_subjects()
    assert refused.value.http_status_code == 401 and time.monotonic() - started < 10
    assert "refused our credentials" in str(registry_refusal(refused.value))

    secret = (secured.registry_credentials / stack_mod.REGISTRY_READONLY_CLIENT).read_text().strip()
    readonly = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"{stack_mod.REGISTRY_READONLY_CLIENT}:{secret}"})
    assert isinstance(readonly.get_subjects(), list)
    subject = f"{topic_name(topics.RESERVATION_COMMANDS)}-opengym.test.ReadOnly"
    schema = Schema(json.dumps({"type": "record", "name": "ReadOnly", "namespace": "opengym.test",
                                "fields": [{"name": "x", "type": "string"}]}), "AVRO")
    with pytest.raises(SchemaRegistryError) as forbidden:
        readonly.register_schema(subject, schema)
    assert forbidden.value.http_status_code == 403
    assert registry_client().register_schema(subject, schema) > 0  # the components' own credentials may


# ---- ownership, enforced by the broker ---------------------------------------------------------------


def test_a_component_writing_a_topic_it_does_not_own_is_refused_by_the_broker(secured):
    refused = produce_as("tenant-billing", topics.RESERVATION_EVENTS)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    assert produce_as("tenant-billing", topics.TENANT_BILLING_EVENTS) is None, "its own facts it may write"
    assert produce_as("reservation", topics.RESERVATION_EVENTS) is None, "the owner may write them"


def test_the_observer_cannot_publish_a_command_or_a_request(secured):
    for target in (topics.RESERVATION_COMMANDS, topics.ATTENDANCE_COMMANDS, topics.ENTITLEMENT_REQUESTS,
                   topics.RESERVATION_EVENTS):
        refused = produce_as("correlation", target)
        assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (target.name, refused)
    assert produce_as("correlation", topics.CORRELATION_ANOMALIES) is None, "its own anomalies it may write"


def test_a_component_cannot_read_a_topic_its_app_does_not_subscribe_to(secured):
    name = topic_name(topics.ENTITLEMENT_REQUESTS)
    group = acl_mod.app_id(topics.CATALOG, "notifications", os.environ["OPENGYM_TOPIC_PREFIX"])  # its own group: allowed
    reader = consumer(group, component="notifications")
    try:
        reader.subscribe([name])
        seen = wait_for(lambda: next((m for m in reader.consume(10, 0.5) if m.error()), None), 20,
                        "an authorization error for notifications reading entitlement requests")
        assert seen.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, seen.error()
    finally:
        reader.close()


def test_the_plan_grants_the_observer_no_write_beyond_its_own_topics(secured):
    writes = {g.name for g in current_plan() if g.principal == "User:correlation" and g.operation == acl_mod.WRITE}
    prefix = os.environ["OPENGYM_TOPIC_PREFIX"]
    own = {topic_name(t) for t in (topics.CORRELATION_ANOMALIES, topics.CORRELATION_CLOCK,
                                   topics.DEAD_LETTERS["correlation"])}
    assert writes == own | {f"{acl_mod.app_id(topics.CATALOG, 'correlation', prefix)}-"}
    on_broker = acl_mod.on_broker(admin(), ["User:correlation"])
    assert {g for g in current_plan() if g.principal == "User:correlation"} <= on_broker


# ---- wrong credentials: a clear error, quickly ---------------------------------------------------------


def test_a_wrong_password_is_one_clear_line_within_seconds_and_never_shows_the_password(secured, tmp_path,
                                                                                      monkeypatch):
    wrong = tmp_path / "password"
    wrong.write_text("certainly-not-it\n")
    started = time.monotonic()
    result = opengym("topics", "create", env={"OPENGYM_SASL_PASSWORD_FILE": str(wrong)}, timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 1
    assert took < 15, f"took {took:.1f}s"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refused user admin" in lines[0] and "invalid credentials" in lines[0]
    assert "certainly-not-it" not in result.stderr + result.stdout

    monkeypatch.setenv("OPENGYM_SASL_PASSWORD_FILE", str(wrong))
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed, match="refused user admin") as refused:
        admin()
    assert time.monotonic() - started < 10 and "certainly-not-it" not in str(refused.value)


def test_a_worker_with_a_wrong_password_exits_with_the_reason_instead_of_waiting(secured, tmp_path):
    wrong = tmp_path / "password"
    wrong.write_text("certainly-not-it\n")
    log = tmp_path / "worker.log"
    env = {**os.environ, "OPENGYM_SASL_CREDENTIALS_DIR": "", "OPENGYM_SASL_USERNAME": "tenant-billing",
           "OPENGYM_SASL_PASSWORD_FILE": str(wrong), "OPENGYM_METRICS_PORT": "0"}
    started = time.monotonic()
    with open(log, "wb") as out:
        worker = subprocess.Popen(OPENGYM + ["worker", "tenant-billing"], stdout=out, stderr=subprocess.STDOUT,
                                  env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        code = worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
    text = log.read_text(errors="replace")
    assert code != 0 and time.monotonic() - started < 60
    assert "SaslAuthenticationFailed" in text and "invalid credentials" in text, text[-2000:]
    assert "certainly-not-it" not in text


# ---- one booking end to end, with real workers and the observer ----------------------------------------


@pytest.fixture(scope="module")
def secured_workers(secure_stack, tmp_path_factory):
    """The seven components and the observer as worker processes, each logged in as its own principal."""
    with pytest.MonkeyPatch.context() as patch:
        prefix = secured_prefix(secure_stack, patch)
        env = {**worker_env(prefix, Faults(delay_share=0.0, payment_failure_rate=0.0, tick_interval=0.2)),
               "OPENGYM_OBSERVER_ORPHAN_GRACE_MS": "1000"}
        supervisor = Supervisor(tmp_path_factory.mktemp("secured-workers"), COMPONENTS + (OBSERVER,), env=env)
        try:
            supervisor.start(240)
            yield prefix, supervisor
        finally:
            supervisor.stop()
            cleanup(prefix)


def denials_for(layout, prefix: str) -> list[str]:
    """The broker's refusals (its authorizer log) of operations on this prefix's topics or groups."""
    log = layout.logfile("kafka")
    return [line for line in log.read_text(errors="replace").splitlines() if "Denied" in line and prefix in line]


def test_one_booking_end_to_end_with_every_component_as_its_own_principal(secure_stack, secured_workers):
    prefix, supervisor = secured_workers
    run = drive(small_plan(1, seed=3), rate=10, settle_timeout=120)
    try:
        assert run.violations() == []
        [booking_id] = run.booking_ids
        terminal = [e for e in run.facts.of("ReservationConfirmed", "ReservationRejected") if e.booking_id == booking_id]
        assert len(terminal) == 1, terminal
        if terminal[0].type_name == "ReservationConfirmed":
            for downstream in ("BillingLineRecorded", "AttendancePending", "NotificationSent"):
                assert [e for e in run.facts.of(downstream) if e.booking_id == booking_id], downstream
    finally:
        run.collector.close()
    assert supervisor.dead() == []
    assert denials_for(secure_stack, prefix) == [], "the ACL plan must grant everything the workers do"


def test_the_observer_reads_every_fact_and_writes_anomalies_as_its_own_principal(secure_stack, secured_workers):
    prefix, supervisor = secured_workers
    booking_id = f"orphan-{uuid.uuid4().hex[:8]}"
    orphan = InstrumentConsumed.new(correlation_id=booking_id, booking_id=booking_id, member_id="m-orphan",
                                    instrument_id="i-orphan", instrument_kind=InstrumentKind.CLASS_PACK,
                                    home_gym_id="g-1", credits_remaining=1)
    name = topic_name(topics.ENTITLEMENT_EVENTS)
    writer = producer(partitioner="murmur2_random")
    writer.produce(name, key=booking_id.encode(), value=AvroCodec().encode(orphan, name))
    assert writer.flush(15) == 0

    codec = AvroCodec(auto_register=False)
    anomalies = topic_name(topics.CORRELATION_ANOMALIES)
    reader = consumer(f"{prefix}anomaly-reader-{uuid.uuid4().hex[:6]}")
    reader.assign([TopicPartition(anomalies, p, 0) for p in range(topics.CORRELATION_ANOMALIES.partitions)])
    found: list = []

    def reported() -> bool:
        for msg in reader.consume(100, 0.5):
            if not msg.error():
                found.append(codec.decode(msg.value()))
        return any(a.correlation_id == booking_id for a in found)

    try:
        # Failed once in a full suite (2026-12-01 20:33, passed in 4 runs of this file alone): the observer's
        # log says which partition held its judging back, if one did (opengym.progress).
        wait_for(reported, 60, f"an anomaly for the reply without a request {booking_id}",
                 seen=lambda: ([(a.kind, a.correlation_id) for a in found],
                               log_tail(supervisor.log_dir / "correlation.log", 40)))
    finally:
        reader.close()
    [anomaly] = [a for a in found if a.correlation_id == booking_id]
    assert anomaly.kind.value == "REPLY_WITHOUT_REQUEST"
    assert denials_for(secure_stack, prefix) == []
