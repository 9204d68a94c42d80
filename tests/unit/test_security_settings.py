"""The security settings every client is built from, and the ACL plan generated from the catalog (pure logic)."""

from __future__ import annotations

import ssl

import pytest

from opengym import topics
from opengym_streams import acl
from opengym_streams import stack
from opengym_streams.security import (AuthenticationFailed, SecurityError, aiokafka_kwargs, faust_broker_kwargs,
                              java_client_properties, kafka_client_config, kafka_security, registry_client_config,
                              registry_headers, registry_refusal)

SECURE = {"OPENGYM_SECURITY_PROTOCOL": "SASL_SSL", "OPENGYM_SASL_USERNAME": "admin",
          "OPENGYM_SASL_PASSWORD": "s3cret-value"}


def test_an_open_broker_needs_no_client_setting():
    assert kafka_client_config(env={}) == {}
    assert faust_broker_kwargs(env={}) == {}
    assert java_client_properties(env={}) == {}
    assert aiokafka_kwargs(env={}) == {"security_protocol": "PLAINTEXT"}
    assert registry_client_config("http://r/apis/ccompat/v7", env={}) == {"url": "http://r/apis/ccompat/v7"}


def test_sasl_ssl_reaches_librdkafka_aiokafka_faust_and_java_alike(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("not parsed here")
    env = {**SECURE, "OPENGYM_SSL_CA_FILE": str(ca)}
    assert kafka_client_config(env=env) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
        "sasl.password": "s3cret-value", "ssl.ca.location": str(ca), "ssl.endpoint.identification.algorithm": "https"}
    props = java_client_properties(env=env)
    assert props["sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                         'username="admin" password="s3cret-value";')
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == str(ca)


def test_faust_gets_scram_credentials_with_a_tls_context_that_checks_host_names():
    credentials = faust_broker_kwargs("reservation", env=SECURE)["broker_credentials"]
    assert credentials.mechanism.value == "SCRAM-SHA-512" and credentials.protocol.value == "SASL_SSL"
    assert credentials.username == "admin" and credentials.ssl_context.check_hostname
    assert "s3cret-value" not in repr(credentials)
    kwargs = aiokafka_kwargs(env=SECURE)
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512" and isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_a_component_logs_in_as_itself_when_the_credentials_directory_holds_its_password(tmp_path):
    (tmp_path / "tenant-billing").write_text("tb-password\n")
    env = {**SECURE, "OPENGYM_SASL_CREDENTIALS_DIR": str(tmp_path)}
    assert kafka_security("tenant-billing", env).username == "tenant-billing"
    assert kafka_security("tenant-billing", env).password.reveal() == "tb-password"
    assert kafka_security("finance", env).username == "admin", "no file for it: the process's own identity"
    assert kafka_security(None, env).username == "admin"


def test_a_password_file_wins_and_secrets_never_show_in_reprs_or_errors(tmp_path):
    path = tmp_path / "password"
    path.write_text("from-the-file\n")
    sec = kafka_security(env={**SECURE, "OPENGYM_SASL_PASSWORD_FILE": str(path)})
    assert sec.password.reveal() == "from-the-file"
    assert "from-the-file" not in repr(sec) and "from-the-file" not in str(sec.password)
    assert sec.describe() == "SASL_SSL SCRAM-SHA-512 as admin"
    with pytest.raises(SecurityError, match="is empty"):
        (tmp_path / "empty").write_text("")
        kafka_security(env={**SECURE, "OPENGYM_SASL_PASSWORD_FILE": str(tmp_path / "empty")})


@pytest.mark.parametrize("env, says", [
    ({"OPENGYM_SECURITY_PROTOCOL": "SASL_SSL"}, "OPENGYM_SASL_USERNAME is not set"),
    ({"OPENGYM_SECURITY_PROTOCOL": "SASL_SSL", "OPENGYM_SASL_USERNAME": "admin"}, "no password for SASL user admin"),
    ({"OPENGYM_SECURITY_PROTOCOL": "KERBEROS"}, "use one of PLAINTEXT"),
    ({**SECURE, "OPENGYM_SASL_MECHANISM": "MD5"}, "use one of SCRAM-SHA-512"),
    ({**SECURE, "OPENGYM_SSL_CA_FILE": "/nonexistent/ca.crt"}, "does not exist"),
])
def test_an_incomplete_setting_is_one_line_naming_the_variable(env, says):
    with pytest.raises(SecurityError, match=says) as raised:
        kafka_client_config(env=env)
    assert "\n" not in str(raised.value) and "s3cret-value" not in str(raised.value)


def test_registry_credentials_become_basic_auth_and_a_401_is_a_refusal_not_a_retry(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("client-secret\n")
    env = {"OPENGYM_REGISTRY_USERNAME": "opengym-streams", "OPENGYM_REGISTRY_PASSWORD_FILE": str(secret)}
    config = registry_client_config("http://r/apis/ccompat/v7", env=env, timeout=10)
    assert config == {"url": "http://r/apis/ccompat/v7", "basic.auth.user.info": "opengym-streams:client-secret",
                      "timeout": 10}
    assert registry_headers(env)["Authorization"].startswith("Basic ")

    class Refused(Exception):
        http_status_code = 401

    class Busy(Exception):
        http_status_code = 503

    refusal = registry_refusal(Refused(), env)
    assert isinstance(refusal, AuthenticationFailed) and "client-secret" not in str(refusal)
    assert registry_refusal(Busy(), env) is None
    with pytest.raises(SecurityError, match="OPENGYM_REGISTRY_USERNAME is not"):
        registry_client_config("http://r", env={"OPENGYM_REGISTRY_PASSWORD": "x"})


# ---- the ACL plan -----------------------------------------------------------------------------------

SUBSCRIPTIONS = {
    "reservation": {"opengym.reservation.commands", "opengym.entitlement.events", "opengym.reservation.seats",
                    "opengym.reservation.seat-replies"},
    "tenant-billing": {"opengym.reservation.events"},
    "correlation": {"opengym.reservation.events", "opengym.entitlement.requests", "opengym.correlation.clock"},
}


def plan(prefix: str = "") -> list[acl.Grant]:
    return acl.plan(topics.CATALOG, SUBSCRIPTIONS, topics.COMPONENTS, prefix=prefix)


def grants_of(grants, component: str, operation: str) -> set[str]:
    return {g.name for g in grants if g.principal == f"User:{component}" and g.operation == operation
            and g.resource_type == acl.TOPIC and g.pattern == acl.LITERAL}


def test_each_component_writes_exactly_the_topics_whose_writers_name_it():
    grants = plan()
    for component in topics.COMPONENTS:
        expected = {t.name for t in topics.ALL_TOPICS if component in t.writers}
        assert grants_of(grants, component, acl.WRITE) == expected, component
    assert "opengym.reservation.events" not in grants_of(grants, "tenant-billing", acl.WRITE)
    assert "opengym.entitlement.requests" in grants_of(grants, "reservation", acl.WRITE), "it sends requests"


def test_the_observer_may_write_its_anomalies_clock_and_dead_letters_and_no_command():
    writes = grants_of(plan(), "correlation", acl.WRITE)
    assert writes == {"opengym.correlation.anomalies", "opengym.correlation.clock", "opengym.correlation.dlq"}
    assert not {t.name for t in topics.ALL_TOPICS if t.kind in ("commands", "requests") and t.owner != "correlation"} & writes


def test_reads_are_the_subscriptions_and_internal_topics_the_app_id_prefix():
    grants = plan("t1.")
    assert grants_of(grants, "tenant-billing", acl.READ) == {"t1.opengym.reservation.events"}
    assert grants_of(grants, "notifications", acl.READ) == set(), "no subscriptions given: reads nothing"
    own = {(g.operation, g.name) for g in grants if g.principal == "User:tenant-billing" and g.pattern == acl.PREFIXED}
    assert own == {(op, "t1.opengym-tenant-billing-") for op in (acl.CREATE, acl.READ, acl.WRITE)}
    assert acl.Grant("User:tenant-billing", acl.GROUP, "t1.opengym-tenant-billing", acl.READ) in grants


def test_outside_producers_may_write_only_what_names_external_as_a_writer():
    writes = grants_of(plan(), topics.EXTERNAL, acl.WRITE)
    assert writes == {t.name for t in topics.ALL_TOPICS if topics.EXTERNAL in t.writers}
    assert grants_of(plan(), topics.EXTERNAL, acl.READ) == set()


def test_the_acl_app_id_is_the_faust_app_id(monkeypatch):
    from opengym.agents import finance
    from opengym_streams.runtime import make_app

    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", "t9.")
    assert make_app(finance.build()).conf.id == acl.app_id(topics.CATALOG, "finance", "t9.") == "t9.opengym-finance"


def test_a_second_system_gets_a_plan_of_its_own_components_topics_and_app_ids():
    from opengym_streams.system import load

    shop = load("order-fulfilment")
    grants = acl.system_plan(shop, prefix="t2.")
    assert {g.principal for g in grants} == {f"User:{who}" for who in acl.principals_of(shop)}
    assert not {g.principal for g in grants} & {"User:reservation", "User:tenant-billing"}
    writes = {g.name for g in grants if g.operation == acl.WRITE and g.pattern == acl.LITERAL}
    assert writes and all(g.removeprefix("t2.") in shop.topics.by_name for g in writes)
    groups = {g.name for g in grants if g.resource_type == acl.GROUP}
    assert groups == {"t2." + shop.topics.app_id(c) for c in shop.names}
    assert all(g.startswith("t2.shop-") for g in groups), "the shop's own app ids, not opengym-*"


# ---- the secured stack's configuration ----------------------------------------------------------------


def test_the_secured_broker_listens_sasl_ssl_with_acls_and_mutual_tls_for_the_controller(tmp_path):
    layout = stack.Layout(tmp_path, stack.SECURE)
    props = dict(line.split("=", 1) for line in stack._kafka_properties(layout).splitlines() if line)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["super.users"] == "User:admin;User:broker"
    assert (layout.kafka_credentials / "broker").stat().st_mode & 0o077 == 0, "passwords only for their owner"


def test_the_open_stack_keeps_its_plaintext_listener_ports_and_state(tmp_path):
    layout = stack.Layout(tmp_path)
    props = stack._kafka_properties(layout)
    assert "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in props
    assert "authorizer" not in props and "sasl" not in props
    assert layout.state == tmp_path / "state" and stack.Layout(tmp_path, stack.SECURE).state == tmp_path / "state-secure"
    assert stack.client_env(layout) == {"OPENGYM_BOOTSTRAP": "127.0.0.1:9092",
                                        "OPENGYM_SCHEMA_REGISTRY": "http://127.0.0.1:8081"}


def test_the_clients_environment_names_password_files_never_passwords(tmp_path):
    layout = stack.Layout(tmp_path, stack.SECURE)
    password = stack.kafka_password(layout, "admin")
    env = stack.client_env(layout)
    assert env["OPENGYM_SASL_PASSWORD_FILE"] == str(layout.kafka_credentials / "admin")
    assert password not in "".join(env.values())


def test_the_realm_gives_the_components_a_developer_client_and_a_read_only_one(tmp_path):
    realm = stack.realm_representation(stack.Layout(tmp_path, stack.SECURE))
    roles = {u["serviceAccountClientId"]: u["realmRoles"] for u in realm["users"]}
    assert roles == {stack.REGISTRY_CLIENT: ["sr-developer"], stack.REGISTRY_READONLY_CLIENT: ["sr-readonly"]}
    assert realm["accessTokenLifespan"] > 5 * 60, "longer than Apicurio's cache of exchanged tokens"


def test_keycloak_java_is_found_by_its_release_file(tmp_path, monkeypatch):
    jdk = tmp_path / "jdk"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "bin" / "java").write_text("")
    (jdk / "release").write_text('JAVA_VERSION="25.0.3"\n')
    assert stack._java_major(jdk) == 25
    monkeypatch.setenv("OPENGYM_KEYCLOAK_JAVA_HOME", str(jdk))
    assert stack.keycloak_java_home() == jdk
    monkeypatch.setenv("OPENGYM_KEYCLOAK_JAVA_HOME", str(tmp_path / "missing"))
    with pytest.raises(stack.StackError, match="has no bin/java"):
        stack.keycloak_java_home()


def test_a_plan_for_a_second_prefix_in_the_same_process_names_only_that_prefix(monkeypatch):
    from opengym_streams.commands.acl import current_plan

    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", "first.")
    first = current_plan()
    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", "second.")
    second = current_plan()
    assert all(g.name.startswith("second.") and "first." not in g.name for g in second)
    assert {g.name.removeprefix("second.") for g in second} == {g.name.removeprefix("first.") for g in first}
    assert "second.opengym.reservation.events" in grants_of(second, "tenant-billing", acl.READ)
