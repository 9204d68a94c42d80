"""How every client reaches a secured broker and registry: SASL (SCRAM) over TLS or plaintext, and
registry credentials. All of it comes from the environment; nothing is set, nothing changes (an open
``PLAINTEXT`` broker, an anonymous registry) unless it says so.

Broker (every Kafka client: Faust apps, aiokafka, confluent-kafka, Kafka's Java tools):

- ``OPENGYM_SECURITY_PROTOCOL``: ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
- ``OPENGYM_SASL_MECHANISM``: ``SCRAM-SHA-512`` (default), ``SCRAM-SHA-256`` or ``PLAIN``.
- ``OPENGYM_SASL_USERNAME`` with ``OPENGYM_SASL_PASSWORD`` or ``OPENGYM_SASL_PASSWORD_FILE``: who this
  process is (the CLI, the demo driver, a worker that has no identity of its own).
- ``OPENGYM_SASL_CREDENTIALS_DIR``: a directory of one file per user, named after the user and holding
  its password (a mounted secret). A component's app logs in as its own principal, the user named after
  the component, when this directory has a file for it; the broker's ACLs (``opengym acl``) then decide
  what it may read and write.
- ``OPENGYM_SSL_CA_FILE``: the PEM certificates that sign the broker's (default: the system's trust
  store). ``OPENGYM_SSL_CHECK_HOSTNAME=0`` turns host name verification off (never do it in production).

Registry (confluent-kafka's ``SchemaRegistryClient`` everywhere, and plain HTTP checks):

- ``OPENGYM_REGISTRY_USERNAME`` with ``OPENGYM_REGISTRY_PASSWORD`` or ``OPENGYM_REGISTRY_PASSWORD_FILE``:
  HTTP basic credentials. For Apicurio with OpenID Connect they are a client id and its secret, which
  the registry exchanges for a token at its identity provider.
- ``OPENGYM_REGISTRY_CA_FILE``: the PEM certificates that sign an ``https://`` registry's.

A secret is read when a client is built, never kept in a settings object, never put in a message: a
:class:`SecurityError` names the variable or the file, not its content. :class:`SecurityConfig` declares
every one of these variables as a knob (``opengym settings``, docs/settings.md); the functions below read
them from the environment themselves, so a password never lands in a dataclass.
"""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from opengym_streams.settings import knob

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True)
class SecurityConfig:
    """The security knobs, declared for the table of every knob; read by :func:`kafka_security` and
    :func:`registry_security` when a client is built (never instantiated with values)."""

    protocol: str = knob("OPENGYM_SECURITY_PROTOCOL", "PLAINTEXT",
                         "broker protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (docs/security.md)")
    mechanism: str = knob("OPENGYM_SASL_MECHANISM", "SCRAM-SHA-512", "SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN")
    username: str = knob("OPENGYM_SASL_USERNAME", "", "the SASL user this process logs in as (when its component has "
                         "no file in OPENGYM_SASL_CREDENTIALS_DIR)")
    password: str = knob("OPENGYM_SASL_PASSWORD", "", "that user's password (prefer OPENGYM_SASL_PASSWORD_FILE)")
    password_file: str = knob("OPENGYM_SASL_PASSWORD_FILE", "", "a file holding that user's password")
    credentials_dir: str = knob("OPENGYM_SASL_CREDENTIALS_DIR", "",
                                "one password file per user, named after it: a component logs in as itself")
    ca_file: str = knob("OPENGYM_SSL_CA_FILE", "", "PEM certificates that sign the broker's (empty: the system's)")
    check_hostname: bool = knob("OPENGYM_SSL_CHECK_HOSTNAME", True, "verify the broker's host name (TLS)")
    registry_username: str = knob("OPENGYM_REGISTRY_USERNAME", "",
                                  "registry basic-auth user (for Apicurio with OpenID Connect: a client id)")
    registry_password: str = knob("OPENGYM_REGISTRY_PASSWORD", "",
                                  "its password or client secret (prefer OPENGYM_REGISTRY_PASSWORD_FILE)")
    registry_password_file: str = knob("OPENGYM_REGISTRY_PASSWORD_FILE", "", "a file holding it")
    registry_ca_file: str = knob("OPENGYM_REGISTRY_CA_FILE", "", "PEM certificates that sign an https registry's")


class SecurityError(ValueError):
    """The security settings are wrong or incomplete; the message is one line and holds no secret."""


class AuthenticationFailed(SecurityError):
    """The broker or the registry refused our credentials (or our TLS handshake): retrying will not help."""


class Secret:
    """A password that does not print itself (repr, str and f-strings show ``***``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


Env = Mapping[str, str]
"""Every function reads ``env`` when given one (the stack builds its own clients that way), else
``os.environ``."""


def _get(env: Env | None, name: str) -> str:
    return (os.environ if env is None else env).get(name, "").strip()


def _read_secret_file(path: Path, variable: str) -> Secret:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise SecurityError(f"{variable}: cannot read {path} ({exc.strerror or exc})") from None
    if not value:
        raise SecurityError(f"{variable}: {path} is empty")
    return Secret(value)


def _secret(env: Env | None, value_var: str, file_var: str) -> Secret | None:
    path = _get(env, file_var)
    if path:
        return _read_secret_file(Path(path), file_var)
    value = (os.environ if env is None else env).get(value_var, "")
    return Secret(value) if value else None


@dataclass(frozen=True)
class KafkaSecurity:
    """How one client connects to the broker. ``repr`` never shows the password."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    check_hostname: bool = True

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def describe(self) -> str:
        """One line for logs and status output: the protocol and the user, never the password."""
        if not self.sasl:
            return self.protocol
        return f"{self.protocol} {self.mechanism} as {self.username}"


def kafka_security(component: str | None = None, env: Env | None = None) -> KafkaSecurity:
    """The broker security settings of this process, or of ``component``'s app when the credentials
    directory holds a password for it. Raises :class:`SecurityError` on an incomplete setting."""
    protocol = (_get(env, "OPENGYM_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise SecurityError(f"OPENGYM_SECURITY_PROTOCOL={protocol}: use one of {', '.join(PROTOCOLS)}")
    mechanism = (_get(env, "OPENGYM_SASL_MECHANISM") or "SCRAM-SHA-512").upper()
    if mechanism not in MECHANISMS:
        raise SecurityError(f"OPENGYM_SASL_MECHANISM={mechanism}: use one of {', '.join(MECHANISMS)}")
    ca = _get(env, "OPENGYM_SSL_CA_FILE")
    ca_file = Path(ca) if ca else None
    if ca_file is not None and protocol in ("SSL", "SASL_SSL") and not ca_file.is_file():
        raise SecurityError(f"OPENGYM_SSL_CA_FILE: {ca_file} does not exist")
    check_hostname = _get(env, "OPENGYM_SSL_CHECK_HOSTNAME") not in ("0", "false", "no")
    username: str | None = None
    password: Secret | None = None
    if protocol.startswith("SASL_"):
        username, password = _credentials(component, env)
    return KafkaSecurity(protocol, mechanism, username, password, ca_file, check_hostname)


def _credentials(component: str | None, env: Env | None) -> tuple[str, Secret]:
    directory = _get(env, "OPENGYM_SASL_CREDENTIALS_DIR")
    if component and directory and (Path(directory) / component).is_file():
        return component, _read_secret_file(Path(directory) / component, "OPENGYM_SASL_CREDENTIALS_DIR")
    username = _get(env, "OPENGYM_SASL_USERNAME")
    if not username:
        whom = f" and {directory} has no file for {component}" if component and directory else ""
        raise SecurityError(f"OPENGYM_SECURITY_PROTOCOL asks for SASL but OPENGYM_SASL_USERNAME is not set{whom}")
    password = _secret(env, "OPENGYM_SASL_PASSWORD", "OPENGYM_SASL_PASSWORD_FILE")
    if password is None:
        raise SecurityError(f"no password for SASL user {username}: set OPENGYM_SASL_PASSWORD_FILE "
                            "(or OPENGYM_SASL_PASSWORD)")
    return username, password


def kafka_client_config(component: str | None = None, env: Env | None = None) -> dict[str, object]:
    """librdkafka settings (confluent-kafka's Producer, Consumer and AdminClient); empty when open."""
    sec = kafka_security(component, env)
    config: dict[str, object] = {}
    if sec.protocol == "PLAINTEXT":
        return config
    config["security.protocol"] = sec.protocol
    if sec.sasl:
        config.update({"sasl.mechanism": sec.mechanism, "sasl.username": sec.username,
                       "sasl.password": sec.password.reveal()})
    if sec.tls:
        if sec.ca_file is not None:
            config["ssl.ca.location"] = str(sec.ca_file)
        config["ssl.endpoint.identification.algorithm"] = "https" if sec.check_hostname else "none"
    return config


def ssl_context(sec: KafkaSecurity) -> ssl.SSLContext:
    """The TLS context aiokafka (and so Faust) connects with: the configured CA, host names checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(sec.ca_file) if sec.ca_file is not None else None)
    context.check_hostname = sec.check_hostname
    if not sec.check_hostname:
        context.verify_mode = ssl.CERT_REQUIRED  # still verify the chain; only the name is not checked
    return context


def aiokafka_kwargs(component: str | None = None, env: Env | None = None) -> dict[str, object]:
    """Keyword arguments for aiokafka's ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and admin client."""
    sec = kafka_security(component, env)
    kwargs: dict[str, object] = {"security_protocol": sec.protocol}
    if sec.sasl:
        kwargs.update({"sasl_mechanism": sec.mechanism, "sasl_plain_username": sec.username,
                       "sasl_plain_password": sec.password.reveal()})
    if sec.tls:
        kwargs["ssl_context"] = ssl_context(sec)
    return kwargs


def faust_broker_kwargs(component: str | None = None, env: Env | None = None) -> dict[str, object]:
    """Keyword arguments for ``faust.App(...)``: ``broker_credentials`` (SASL, with its TLS context)
    or ``ssl_context`` (TLS alone); empty when open."""
    sec = kafka_security(component, env)
    if sec.sasl:
        import faust

        return {"broker_credentials": faust.SASLCredentials(
            username=sec.username, password=sec.password.reveal(), mechanism=sec.mechanism,
            ssl_context=ssl_context(sec) if sec.tls else None)}
    if sec.tls:
        return {"ssl_context": ssl_context(sec)}
    return {}


def java_client_properties(component: str | None = None, env: Env | None = None) -> dict[str, str]:
    """The same settings for Kafka's Java clients and tools (a ``--command-config`` file); empty when open.

    The CA goes in as a PEM trust store (Kafka reads PEM since KIP-651)."""
    sec = kafka_security(component, env)
    props: dict[str, str] = {}
    if sec.protocol == "PLAINTEXT":
        return props
    props["security.protocol"] = sec.protocol
    if sec.sasl:
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if sec.mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        props["sasl.mechanism"] = sec.mechanism
        props["sasl.jaas.config"] = (f'{module} required username="{_jaas_quote(sec.username)}" '
                                     f'password="{_jaas_quote(sec.password.reveal())}";')
    if sec.tls:
        if sec.ca_file is not None:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = str(sec.ca_file)
        if not sec.check_hostname:
            props["ssl.endpoint.identification.algorithm"] = ""
    return props


def _jaas_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# ---------------------------------------------------------------------------------------------
# The schema registry


@dataclass(frozen=True)
class RegistrySecurity:
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None

    def describe(self) -> str:
        return f"as {self.username}" if self.username else "anonymous"


def registry_security(env: Env | None = None) -> RegistrySecurity:
    username = _get(env, "OPENGYM_REGISTRY_USERNAME") or None
    password = _secret(env, "OPENGYM_REGISTRY_PASSWORD", "OPENGYM_REGISTRY_PASSWORD_FILE")
    if username and password is None:
        raise SecurityError(f"no password for registry user {username}: set OPENGYM_REGISTRY_PASSWORD_FILE "
                            "(or OPENGYM_REGISTRY_PASSWORD)")
    if password is not None and not username:
        raise SecurityError("a registry password is set but OPENGYM_REGISTRY_USERNAME is not")
    ca = _get(env, "OPENGYM_REGISTRY_CA_FILE")
    ca_file = Path(ca) if ca else None
    if ca_file is not None and not ca_file.is_file():
        raise SecurityError(f"OPENGYM_REGISTRY_CA_FILE: {ca_file} does not exist")
    return RegistrySecurity(username, password, ca_file)


def registry_client_config(url: str | None = None, env: Env | None = None, **extra: object) -> dict[str, object]:
    """confluent-kafka's ``SchemaRegistryClient`` configuration: the URL (default: the settings'
    Confluent-compatible API), basic credentials and CA when configured, then ``extra``."""
    if url is None:
        from opengym_streams.settings import get_settings

        url = get_settings().registry_url
    sec = registry_security(env)
    config: dict[str, object] = {"url": url}
    if sec.username:
        config["basic.auth.user.info"] = f"{sec.username}:{sec.password.reveal()}"
    if sec.ca_file is not None:
        config["ssl.ca.location"] = str(sec.ca_file)
    config.update(extra)
    return config


def registry_refusal(exc: BaseException, env: Env | None = None) -> AuthenticationFailed | None:
    """``exc`` as :class:`AuthenticationFailed` when it is the registry refusing us (HTTP 401 or 403),
    else None: credentials that are wrong stay wrong, so waiting for them is a hang, not a retry."""
    status = getattr(exc, "http_status_code", None)
    if status not in (401, 403):
        return None
    sec = registry_security(env)
    what = "refused our credentials" if status == 401 else "does not allow this"
    return AuthenticationFailed(f"the schema registry {what} (HTTP {status}, {sec.describe()}); check "
                                "OPENGYM_REGISTRY_USERNAME and its password")


def registry_headers(env: Env | None = None) -> dict[str, str]:
    """HTTP headers for a plain request to the registry (``urllib``): ``Authorization`` when configured."""
    sec = registry_security(env)
    if not sec.username:
        return {}
    token = base64.b64encode(f"{sec.username}:{sec.password.reveal()}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def describe(env: Env | None = None) -> str:
    """What this process connects with, in one secret-free line (``opengym stack status``, logs)."""
    try:
        return f"broker {kafka_security(env=env).describe()}, registry {registry_security(env).describe()}"
    except SecurityError as exc:
        return f"misconfigured: {exc}"
