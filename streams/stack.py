"""The local stack: a single-node KRaft Apache Kafka broker and Apicurio Registry, from Maven Central.

Artifacts are fetched once into ``$OPENGYM_HOME/dist`` (default ``~/.cache/opengym``); broker data,
registry data, pid files and logs live under ``$OPENGYM_HOME/state``. Nothing is written in the repo.

Two profiles, which can run side by side: the open one (:data:`OPEN`, the default: plaintext, no
authentication, ports 9092/9093/8081) and the secured one (:data:`SECURE`, ``up(secure=True)``: a
SASL_SSL listener with SCRAM-SHA-512 users and ACLs enforced, a throwaway CA, Keycloak as the
registry's OpenID Connect provider; ports 9192/9193/8181/8180, state under ``state-secure``).
docs/security.md says what the secured one protects.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from opengym_streams.settings import CCOMPAT_PATH, Settings, from_env, get_settings, knob

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = "3.0.9"
KEYCLOAK_VERSION = "26.5.6"
KEYCLOAK_MIN_JAVA = 21
"""Keycloak 26 runs on Java 21 or newer; the stack looks for one beside the machine's Java 17."""

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Profile:
    """One flavour of the local stack: its ports and its state directory (so two can run at once)."""

    name: str
    state_dir: str
    kafka_port: int
    controller_port: int
    registry_port: int
    keycloak_port: int | None = None

    @property
    def secure(self) -> bool:
        return self.keycloak_port is not None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def registry(self) -> str:
        return f"http://{HOST}:{self.registry_port}"


OPEN = Profile("open", "state", kafka_port=9092, controller_port=9093, registry_port=8081)
SECURE = Profile("secure", "state-secure", kafka_port=9192, controller_port=9193, registry_port=8181,
                 keycloak_port=8180)

SPARE = Profile("spare", "state-spare", kafka_port=9292, controller_port=9293, registry_port=OPEN.registry_port)
"""A second broker beside the open stack (ports and data of its own; the open stack's registry serves it):
what a test may crash and restart under load without touching the broker every other test shares
(:func:`broker_up`, :func:`broker_stop`; ``tests/integration/test_broker_restart.py``)."""

KAFKA_PORT = OPEN.kafka_port
CONTROLLER_PORT = OPEN.controller_port
REGISTRY_PORT = OPEN.registry_port

ADMIN_USER = "admin"
"""The secured broker's super user: the CLI, the tests, the demo driver and collector log in as it."""
BROKER_USER = "broker"
"""The broker's own principal: inter-broker SASL and the controller listener's TLS certificate (CN=broker)."""
SCRAM_MECHANISM = "SCRAM-SHA-512"
REALM = "opengym"
REGISTRY_RESOURCE_CLIENT = "registry-api"
"""The Keycloak client Apicurio checks tokens for (its ``quarkus.oidc.client-id``)."""
REGISTRY_CLIENT = "opengym-streams"
"""The registry credentials every OpenGym process uses: role sr-developer (read, register schemas)."""
REGISTRY_READONLY_CLIENT = "opengym-readonly"
"""A read-only registry client (role sr-readonly): what a consumer outside OpenGym would get."""


@dataclass(frozen=True)
class SecureStackConfig:
    """The secured local stack's knobs (``opengym stack up --secure``)."""

    secure: bool = knob("OPENGYM_STACK_SECURE", False, "`opengym stack` acts on the secured stack (as --secure does)")
    keycloak_java_home: str = knob("OPENGYM_KEYCLOAK_JAVA_HOME", "",
                                   "a Java 21+ home for Keycloak (empty: the newest under JAVA_HOME or /usr/lib/jvm)")
    keycloak_heap: str = knob("OPENGYM_KEYCLOAK_HEAP", "512m", "the secured stack's Keycloak heap")


class StackError(RuntimeError):
    """A problem the user must fix; the message is one clear line."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    home: Path
    profile: Profile = OPEN

    @property
    def dist(self) -> Path:
        return self.home / "dist"

    @property
    def kafka_libs(self) -> Path:
        return self.dist / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def apicurio_dir(self) -> Path:
        return self.dist / f"apicurio-{APICURIO_VERSION}"

    @property
    def keycloak_dir(self) -> Path:
        return self.dist / f"keycloak-{KEYCLOAK_VERSION}"

    @property
    def state(self) -> Path:
        return self.home / self.profile.state_dir

    @property
    def kafka_data(self) -> Path:
        return self.state / "kafka" / "data"

    @property
    def kafka_config(self) -> Path:
        return self.state / "kafka" / "server.properties"

    @property
    def registry_data(self) -> Path:
        return self.state / "registry"

    @property
    def keycloak_data(self) -> Path:
        return self.state / "keycloak"

    @property
    def tls(self) -> Path:
        return self.state / "tls"

    @property
    def ca_file(self) -> Path:
        """The throwaway CA's certificate: what clients of the secured stack trust."""
        return self.tls / "ca.crt"

    @property
    def secrets(self) -> Path:
        return self.state / "secrets"

    @property
    def kafka_credentials(self) -> Path:
        """One file per SCRAM user holding its password (``OPENGYM_SASL_CREDENTIALS_DIR``)."""
        return self.secrets / "kafka"

    @property
    def registry_credentials(self) -> Path:
        """One file per Keycloak client holding its secret."""
        return self.secrets / "registry"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    def pidfile(self, service: str) -> Path:
        return self.state / f"{service}.pid"

    def logfile(self, service: str) -> Path:
        return self.logs / f"{service}.log"


# ---------------------------------------------------------------------------------------------
# Fetching

_KAFKA_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.opengym</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <!-- ProducerPerformance / ConsumerPerformance for the benchmark baselines -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <!-- kafka_2.13's POM omits a logging backend; without these the broker logs nothing -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


def require_tool(name: str, why: str) -> str:
    path = shutil.which(name)
    if not path:
        raise StackError(f"{name} is not installed; it is needed {why} (Debian: apt-get install "
                         f"{'openjdk-17-jre-headless' if name == 'java' else 'maven'})")
    return path


def _mvn(args: list[str], cwd: Path, what: str) -> None:
    mvn = require_tool("mvn", "to fetch the stack's artifacts from Maven Central")
    result = subprocess.run([mvn, "-q", "-B", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise StackError(f"fetching {what} from Maven Central failed: {' | '.join(tail)}")


def fetch_kafka(layout: Layout) -> Path:
    done = layout.kafka_libs / ".complete"
    if done.exists():
        return layout.kafka_libs
    _say(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once, into {layout.dist})")
    work = layout.kafka_libs.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(_KAFKA_POM)
    staging = work / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    _mvn(["dependency:copy-dependencies", f"-DoutputDirectory={staging}"], work, f"Kafka {KAFKA_VERSION}")
    # kafka-tools drags in an slf4j 1.x binding path; keep only the slf4j-api we pinned.
    for jar in staging.glob("slf4j-api-1.*.jar"):
        jar.unlink()
    (staging / "log4j2.xml").write_text(_LOG4J2)
    shutil.rmtree(layout.kafka_libs, ignore_errors=True)
    staging.rename(layout.kafka_libs)
    done.write_text(KAFKA_VERSION)
    return layout.kafka_libs


def fetch_apicurio(layout: Layout) -> Path:
    target = layout.apicurio_dir
    done = target / ".complete"
    if done.exists():
        return target
    _say(f"fetching Apicurio Registry {APICURIO_VERSION} from Maven Central (once, into {layout.dist})")
    download = layout.dist / "downloads"
    download.mkdir(parents=True, exist_ok=True)
    artifact = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
    _mvn(["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={download}"], download,
         f"Apicurio Registry {APICURIO_VERSION}")
    archive = download / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
    staging = layout.dist / f"apicurio-{APICURIO_VERSION}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    archive.unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    done.write_text(APICURIO_VERSION)
    return target


def _apicurio_jar(root: Path) -> Path:
    for candidate in (root / "quarkus-app" / "quarkus-run.jar", root / "quarkus-run.jar"):
        if candidate.exists():
            return candidate
    runners = sorted(root.glob("*-runner.jar"))
    if runners:
        return runners[0]
    raise StackError(f"no runnable jar found in {root}; delete it and run `opengym stack up` again")


KEYCLOAK_BUILD_OPTIONS = ("--db=dev-file", "--cache=local")
"""Build-time options of the Keycloak distribution: a file H2 database (under the secured stack's
state, given at start) and a local cache (no cluster discovery on the machine's network)."""


def fetch_keycloak(layout: Layout) -> Path:
    """Keycloak's server distribution from Maven Central, unpacked and built once (``kc.sh build``)."""
    target = layout.keycloak_dir
    done = target / ".complete"
    if not done.exists():
        _say(f"fetching Keycloak {KEYCLOAK_VERSION} from Maven Central (once, into {layout.dist})")
        download = layout.dist / "downloads"
        download.mkdir(parents=True, exist_ok=True)
        artifact = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz"
        _mvn(["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={download}"], download,
             f"Keycloak {KEYCLOAK_VERSION}")
        archive = download / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz"
        staging = layout.dist / f"keycloak-{KEYCLOAK_VERSION}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        archive.unlink()
        inner = staging / f"keycloak-{KEYCLOAK_VERSION}"
        shutil.rmtree(target, ignore_errors=True)
        (inner if inner.is_dir() else staging).rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        done.write_text(KEYCLOAK_VERSION)
    built = target / ".built"
    wanted = " ".join(KEYCLOAK_BUILD_OPTIONS)
    if not built.exists() or built.read_text() != wanted:
        _say(f"building Keycloak {KEYCLOAK_VERSION} for this stack (once: {wanted})")
        result = subprocess.run([str(target / "bin" / "kc.sh"), "build", *KEYCLOAK_BUILD_OPTIONS],
                                env=_keycloak_env(layout), capture_output=True, text=True, cwd=target)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise StackError(f"building Keycloak failed: {' | '.join(tail)}")
        built.write_text(wanted)
    return target


def _java_major(java_home: Path) -> int | None:
    """The feature version of the JDK or JRE at ``java_home``, from its ``release`` file."""
    try:
        release = (java_home / "release").read_text()
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)', release, re.M)
    return int(found.group(1)) if found else None


def keycloak_java_home() -> Path:
    """A Java home new enough for Keycloak: ``OPENGYM_KEYCLOAK_JAVA_HOME``, else ``JAVA_HOME`` or the
    newest JDK under /usr/lib/jvm that is Java 21 or newer (these machines ship a Temurin JDK there)."""
    explicit = from_env(SecureStackConfig).keycloak_java_home.strip()
    if explicit:
        if not (Path(explicit) / "bin" / "java").exists():
            raise StackError(f"OPENGYM_KEYCLOAK_JAVA_HOME={explicit} has no bin/java")
        return Path(explicit)
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink())
    usable = [(major, home) for home in candidates if (home / "bin" / "java").exists()
              for major in [_java_major(home)] if major is not None and major >= KEYCLOAK_MIN_JAVA]
    if not usable:
        raise StackError(f"Keycloak {KEYCLOAK_VERSION} needs Java {KEYCLOAK_MIN_JAVA} or newer and none was found "
                         "(JAVA_HOME, /usr/lib/jvm); install one (e.g. a Temurin JDK) or set "
                         "OPENGYM_KEYCLOAK_JAVA_HOME")
    return max(usable, key=lambda found: found[0])[1]


def _keycloak_env(layout: Layout) -> dict[str, str]:
    heap = from_env(SecureStackConfig).keycloak_heap
    return {**os.environ, "JAVA_HOME": str(keycloak_java_home()),
            # kc.sh sizes the heap from the machine's memory otherwise (70% of it).
            "JAVA_OPTS_KC_HEAP": f"-Xms128m -Xmx{heap}",
            # The client JIT only: start-up took a third less CPU (measured, docs/stack.md), and the
            # realm's few requests a minute never need the optimising compiler.
            "JAVA_OPTS_APPEND": "-XX:TieredStopAtLevel=1"}


# ---------------------------------------------------------------------------------------------
# Processes


def _port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _require_free(ports: Iterable[int], what: str, wait_s: float = 10.0) -> None:
    """Every port free, or a clear error; waits up to ``wait_s`` (a JVM just killed still shows as a
    zombie, holding its sockets, while its threads exit)."""
    deadline = time.monotonic() + wait_s
    while (busy := [port for port in ports if _port_open(port)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if busy:
        raise StackError(f"port {busy[0]} on {HOST} is taken by another process (not started by "
                         f"`opengym stack up`); stop it or free the port before starting {what}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return state != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _marker(service: str, profile: Profile = OPEN) -> str:
    # The open stack keeps its historical marker, so a stack started by an older checkout is still ours.
    return f"-Dopengym.service={service}" if profile.name == OPEN.name else f"-Dopengym.service={profile.name}-{service}"


def our_pid(layout: Layout, service: str) -> int | None:
    """The pid of the service we started, if it still runs (a reused pid is not ours)."""
    pidfile = layout.pidfile(service)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if _pid_alive(pid) and _marker(service, layout.profile) in _cmdline(pid):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def _spawn(layout: Layout, service: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> int:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = open(layout.logfile(service), "ab")
    log.write(f"\n==== opengym stack up {service} at {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
    log.flush()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    layout.pidfile(service).write_text(str(proc.pid))
    return proc.pid


def _kafka_properties(layout: Layout) -> str:
    p = layout.profile
    if p.secure:
        listeners = [
            f"listeners=SASL_SSL://{HOST}:{p.kafka_port},CONTROLLER://{HOST}:{p.controller_port}",
            f"advertised.listeners=SASL_SSL://{HOST}:{p.kafka_port}",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL",
            *_secure_kafka_properties(layout),
        ]
    else:
        listeners = [
            f"listeners=PLAINTEXT://{HOST}:{p.kafka_port},CONTROLLER://{HOST}:{p.controller_port}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{p.kafka_port}",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{p.controller_port}",
        "controller.listener.names=CONTROLLER",
        *listeners,
        f"log.dirs={layout.kafka_data}",
        # Contract topics are created by `opengym topics create`; a typo must fail, not create a topic.
        "auto.create.topics.enable=false",
        "num.partitions=4",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Single node: no reason to wait for more members before the first rebalance.
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=168",
        "",
    ])


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return require_tool("java", "to run Kafka and Apicurio Registry (Java 17 or newer)")


def start_kafka(layout: Layout) -> int:
    java = _java()
    libs = fetch_kafka(layout)
    layout.kafka_config.parent.mkdir(parents=True, exist_ok=True)
    if layout.profile.secure:
        ensure_tls(layout)
    _write_private(layout.kafka_config, _kafka_properties(layout))
    classpath = f"{libs}/*"
    log4j_file = libs / "log4j2.xml"
    if layout.profile.secure:
        log4j_file = layout.kafka_config.parent / "log4j2.xml"
        log4j_file.write_text(_LOG4J2_SECURE)
    log4j = f"-Dlog4j2.configurationFile={log4j_file}"
    if not (layout.kafka_data / "meta.properties").exists():
        layout.kafka_data.mkdir(parents=True, exist_ok=True)
        cluster_id = uuid.uuid4().hex[:22]
        scram = []
        if layout.profile.secure:
            # The users the broker needs before it can serve anyone: created by Kafka's own storage tool.
            # (Component users are added through the admin API once it runs: ensure_scram_users.)
            for user in (ADMIN_USER, BROKER_USER):
                scram += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={kafka_password(layout, user)}]"]
        fmt = subprocess.run(
            [java, log4j, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(layout.kafka_config), *scram], capture_output=True, text=True)
        if fmt.returncode != 0:
            raise StackError(f"formatting the Kafka log dir failed: {_redact(layout, fmt.stderr.strip()[-300:])}")
    heap = get_settings().kafka_heap
    return _spawn(layout, "kafka", [
        java, _marker("kafka", layout.profile), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", log4j,
        "-Djava.awt.headless=true", "-cp", classpath, "kafka.Kafka", str(layout.kafka_config),
    ], cwd=layout.state)


def start_registry(layout: Layout) -> int:
    java = _java()
    root = fetch_apicurio(layout)
    layout.registry_data.mkdir(parents=True, exist_ok=True)
    heap = get_settings().registry_heap
    db = layout.registry_data / "registry"
    port = layout.profile.registry_port
    return _spawn(layout, "registry", [
        java, _marker("registry", layout.profile), f"-Xmx{heap}",
        f"-Dquarkus.http.host={HOST}", f"-Dquarkus.http.port={port}",
        "-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=h2",
        # A file-backed H2 keeps registered schemas (and so their ids) across down/up.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{db};DB_CLOSE_ON_EXIT=FALSE",
        "-Dapicurio.datasource.username=sa", "-Dapicurio.datasource.password=sa",
        # Agroal's 5 s default for a first connection was too short once: the secured registry, starting beside
        # Keycloak on a loaded machine (load 25), failed with "Acquisition timeout" (docs/notes/security.md).
        "-Dquarkus.datasource.h2.jdbc.acquisition-timeout=60S",
        *(_registry_auth_properties(layout) if layout.profile.secure else ()),
        "-Dquarkus.log.level=WARN", "-Dquarkus.log.category.\"io.apicurio\".level=INFO",
        "-Dquarkus.http.access-log.enabled=false",
        "-jar", str(_apicurio_jar(root)),
    ], cwd=layout.registry_data)


def start_keycloak(layout: Layout) -> int:
    root = fetch_keycloak(layout)
    layout.keycloak_data.mkdir(parents=True, exist_ok=True)
    env = {**_keycloak_env(layout),
           # The bootstrap admin of the master realm, only used to create the opengym realm. Passed by
           # environment, not on the command line (which every local user can read in /proc).
           "KC_BOOTSTRAP_ADMIN_USERNAME": KEYCLOAK_ADMIN,
           "KC_BOOTSTRAP_ADMIN_PASSWORD": secret(layout, "keycloak", KEYCLOAK_ADMIN)}
    # kc.sh passes -D arguments on to the java process it starts (as a child, not exec'd): both carry the marker.
    return _spawn(layout, "keycloak", [
        str(root / "bin" / "kc.sh"), _marker("keycloak", layout.profile), "start", "--optimized", "--http-enabled=true", f"--http-host={HOST}",
        f"--http-port={layout.profile.keycloak_port}", "--hostname-strict=false",
        # A runtime option too (given only to `build`, the server still ran Infinispan's JGroups cluster
        # discovery and waited 20 s for the previous run's node before going alone).
        "--cache=local",
        f"--db-url=jdbc:h2:file:{layout.keycloak_data / 'keycloakdb'};NON_KEYWORDS=VALUE",
        "--log-level=WARN,io.quarkus:INFO,org.keycloak.services:INFO",
    ], cwd=layout.keycloak_data, env=env)


# ---------------------------------------------------------------------------------------------
# The secured profile: secrets, certificates, broker and registry settings

KEYCLOAK_ADMIN = "bootstrap-admin"

_LOG4J2_SECURE = _LOG4J2.replace(
    '<Logger name="kafka.request.logger" level="WARN"/>',
    '<Logger name="kafka.request.logger" level="WARN"/>\n'
    '    <!-- every refused operation: principal, operation, resource -->\n'
    '    <Logger name="kafka.authorizer.logger" level="INFO"/>')


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it may hold a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def secret(layout: Layout, kind: str, name: str) -> str:
    """The generated secret ``kind/name`` of this stack (created on first use, kept until --fresh)."""
    path = layout.secrets / kind / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.secrets, 0o700)
    os.chmod(path.parent, 0o700)
    # Letters and digits only: the value goes into JAAS and --add-scram syntax unquoted.
    value = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(32))
    _write_private(path, value + "\n")
    return value


def kafka_password(layout: Layout, user: str) -> str:
    return secret(layout, "kafka", user)


def _redact(layout: Layout, text: str) -> str:
    """``text`` with every secret of this stack replaced by ``***`` (for error messages)."""
    if layout.secrets.is_dir():
        for path in layout.secrets.rglob("*"):
            if path.is_file():
                value = path.read_text().strip()
                if value:
                    text = text.replace(value, "***")
    return text


def _openssl(args: list[str], cwd: Path) -> None:
    openssl = require_tool("openssl", "to make the secured stack's throwaway certificates")
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"openssl {args[0]} failed: {result.stderr.strip()[-300:]}")


def ensure_tls(layout: Layout) -> None:
    """A throwaway CA and the broker's certificate (CN=broker, for 127.0.0.1 and localhost), made once
    per state directory. The CA's key is deleted once it has signed: nothing else can be issued."""
    tls = layout.tls
    keystore = tls / "broker.p12"
    if layout.ca_file.exists() and keystore.exists():
        return
    shutil.rmtree(tls, ignore_errors=True)
    tls.mkdir(parents=True)
    os.chmod(tls, 0o700)
    store_password = tls / "store.password"
    _write_private(store_password, secret(layout, "tls", "keystore") + "\n")
    (tls / "broker.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                    "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ca.key"], tls)
    _openssl(["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "365", "-subj",
              "/CN=OpenGym local stack CA (throwaway)", "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt"], tls)
    _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "broker.key"], tls)
    _openssl(["req", "-new", "-key", "broker.key", "-subj", f"/CN={BROKER_USER}", "-out", "broker.csr"], tls)
    _openssl(["x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
              "-days", "365", "-sha256", "-extfile", "broker.ext", "-out", "broker.crt"], tls)
    _openssl(["pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key", "-certfile", "ca.crt",
              "-name", BROKER_USER, "-out", "broker.p12.partial", "-passout", f"file:{store_password}"], tls)
    for leftover in ("ca.key", "ca.srl", "broker.key", "broker.csr", "broker.ext", "store.password"):
        (tls / leftover).unlink(missing_ok=True)
    os.chmod(tls / "broker.p12.partial", 0o600)
    (tls / "broker.p12.partial").rename(keystore)


def _secure_kafka_properties(layout: Layout) -> list[str]:
    store = secret(layout, "tls", "keystore")
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{BROKER_USER}" '
            f'password="{kafka_password(layout, BROKER_USER)}";')
    return [
        f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}",
        f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={layout.tls / 'broker.p12'}",
        f"ssl.keystore.password={store}",
        f"ssl.key.password={store}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={layout.ca_file}",
        # The controller listener takes only the broker's own certificate (mutual TLS), so nobody else
        # on the machine can talk to the controller; its principal CN=broker maps to User:broker.
        "listener.name.controller.ssl.client.auth=required",
        "ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9._-]+)$/$1/,DEFAULT",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:{ADMIN_USER};User:{BROKER_USER}",
        "allow.everyone.if.no.acl.found=false",
    ]


def _registry_auth_properties(layout: Layout) -> list[str]:
    realm = f"http://{HOST}:{layout.profile.keycloak_port}/realms/{REALM}"
    return [
        "-Dquarkus.oidc.tenant-enabled=true",
        f"-Dquarkus.oidc.auth-server-url={realm}",
        f"-Dquarkus.oidc.token-path={realm}/protocol/openid-connect/token",
        f"-Dquarkus.oidc.client-id={REGISTRY_RESOURCE_CLIENT}",
        # Basic credentials (client id, secret) are exchanged for a token at Keycloak: what
        # confluent-kafka's registry client can send.
        "-Dapicurio.authn.basic-client-credentials.enabled=true",
        "-Dapicurio.auth.role-based-authorization=true",
        "-Dapicurio.auth.role-source=token",
    ]


def client_env(layout: Layout, user: str = ADMIN_USER) -> dict[str, str]:
    """The environment a client of this stack needs (``opengym stack env --secure`` prints it):
    addresses, and for the secured profile the protocol, the CA, the files holding the passwords."""
    p = layout.profile
    env = {"OPENGYM_BOOTSTRAP": p.bootstrap, "OPENGYM_SCHEMA_REGISTRY": p.registry}
    if not p.secure:
        return env
    return {
        **env,
        "OPENGYM_SECURITY_PROTOCOL": "SASL_SSL",
        "OPENGYM_SASL_MECHANISM": SCRAM_MECHANISM,
        "OPENGYM_SSL_CA_FILE": str(layout.ca_file),
        "OPENGYM_SASL_USERNAME": user,
        "OPENGYM_SASL_PASSWORD_FILE": str(layout.kafka_credentials / user),
        "OPENGYM_SASL_CREDENTIALS_DIR": str(layout.kafka_credentials),
        "OPENGYM_REGISTRY_USERNAME": REGISTRY_CLIENT,
        "OPENGYM_REGISTRY_PASSWORD_FILE": str(layout.registry_credentials / REGISTRY_CLIENT),
    }


def ensure_scram_users(layout: Layout, users: Iterable[str], timeout: float = 30.0) -> list[str]:
    """Give every user in ``users`` a SCRAM credential (generated password) unless it has one; the
    users created. Kafka's admin API (AlterUserScramCredentials), as the super user."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    wanted = sorted(set(users) - {ADMIN_USER, BROKER_USER})
    if not wanted:
        return []
    client = _admin_client(layout)
    have: set[str] = set()
    for user, future in client.describe_user_scram_credentials(wanted, request_timeout=timeout).items():
        try:
            if future.result():
                have.add(user)
        except Exception:  # RESOURCE_NOT_FOUND: no credential yet
            pass
    missing = [u for u in wanted if u not in have]
    if missing:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
        upserts = [UserScramCredentialUpsertion(u, info, kafka_password(layout, u).encode()) for u in missing]
        for user, future in client.alter_user_scram_credentials(upserts, request_timeout=timeout).items():
            try:
                future.result()
            except Exception as exc:
                raise StackError(f"creating SCRAM user {user} failed: {_redact(layout, str(exc))}") from None
    return missing


def _keycloak_url(layout: Layout) -> str:
    return f"http://{HOST}:{layout.profile.keycloak_port}"


def _http_json(url: str, *, data: dict | None = None, form: dict | None = None, token: str | None = None,
               timeout: float = 10.0) -> tuple[int, object]:
    headers = {"Accept": "application/json"}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def realm_representation(layout: Layout) -> dict:
    """The opengym realm: the roles Apicurio knows, the client it checks tokens for, and one
    confidential client (service account) per kind of registry user."""
    def service(client_id: str, role: str) -> tuple[dict, dict]:
        client = {"clientId": client_id, "enabled": True, "publicClient": False,
                  "clientAuthenticatorType": "client-secret", "secret": secret(layout, "registry", client_id),
                  "serviceAccountsEnabled": True, "standardFlowEnabled": False,
                  "directAccessGrantsEnabled": False}
        account = {"username": f"service-account-{client_id}", "enabled": True,
                   "serviceAccountClientId": client_id, "realmRoles": [role]}
        return client, account

    streams_client, streams_account = service(REGISTRY_CLIENT, "sr-developer")
    readonly_client, readonly_account = service(REGISTRY_READONLY_CLIENT, "sr-readonly")
    return {
        "realm": REALM, "enabled": True,
        # Longer than Apicurio's cache of exchanged tokens (5 minutes), so a cached token never expires in use.
        "accessTokenLifespan": 900,
        "roles": {"realm": [{"name": role} for role in ("sr-admin", "sr-developer", "sr-readonly")]},
        "clients": [
            {"clientId": REGISTRY_RESOURCE_CLIENT, "enabled": True, "publicClient": False, "bearerOnly": True,
             "standardFlowEnabled": False},
            streams_client, readonly_client,
        ],
        "users": [streams_account, readonly_account],
    }


def ensure_realm(layout: Layout) -> bool:
    """Create the opengym realm through Keycloak's admin API unless it exists; True when created."""
    base = _keycloak_url(layout)
    status_code, token = _http_json(f"{base}/realms/master/protocol/openid-connect/token", form={
        "grant_type": "password", "client_id": "admin-cli", "username": KEYCLOAK_ADMIN,
        "password": secret(layout, "keycloak", KEYCLOAK_ADMIN)})
    if status_code != 200 or not isinstance(token, dict):
        raise StackError(f"Keycloak refused its bootstrap admin (HTTP {status_code}); "
                         f"wipe the secured stack with `opengym stack up --secure --fresh`")
    access = token["access_token"]
    exists, _ = _http_json(f"{base}/admin/realms/{REALM}", token=access)
    if exists == 200:
        return False
    created, _ = _http_json(f"{base}/admin/realms", data=realm_representation(layout), token=access, timeout=60)
    if created not in (201, 409):
        raise StackError(f"creating the Keycloak realm {REALM} failed (HTTP {created}); see {layout.logfile('keycloak')}")
    return created == 201


# ---------------------------------------------------------------------------------------------
# Readiness


def _admin_client(layout: Layout):
    from confluent_kafka.admin import AdminClient

    from opengym_streams.kafka import QUIET_LOGGER
    from opengym_streams.security import kafka_client_config

    config = {"bootstrap.servers": layout.profile.bootstrap, "logger": QUIET_LOGGER}
    if layout.profile.secure:
        config.update(kafka_client_config(env=client_env(layout)))
    return AdminClient(config)


def kafka_ready(timeout: float = 2.0, layout: Layout | None = None) -> bool:
    layout = layout or Layout(get_settings().home)
    if layout.profile.secure and not (layout.kafka_credentials / ADMIN_USER).exists():
        return False
    try:
        _admin_client(layout).list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def registry_ready(timeout: float = 2.0, layout: Layout | None = None) -> bool:
    """The Confluent API answers (for the secured registry: answers an authenticated request)."""
    layout = layout or Layout(get_settings().home)
    headers = {}
    if layout.profile.secure:
        from opengym_streams.security import registry_headers

        if not (layout.registry_credentials / REGISTRY_CLIENT).exists():
            return False
        headers = registry_headers(client_env(layout))
    request = urllib.request.Request(f"{layout.profile.registry}{CCOMPAT_PATH}/subjects", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def keycloak_ready(timeout: float = 2.0, layout: Layout | None = None) -> bool:
    layout = layout or Layout(get_settings().home, SECURE)
    try:
        with urllib.request.urlopen(f"{_keycloak_url(layout)}/realms/master", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True)
class Service:
    name: str
    ports: tuple[int, ...]
    start: Callable[[Layout], int]
    ready: Callable[..., bool]
    what: str
    after_ready: tuple[Callable[[Layout], object], ...] = field(default=())
    """Set-up that needs the service answering (users, realm), run by ``up`` once it is ready."""

    def __getitem__(self, key: str):  # older callers read SERVICES[name]["what"]
        return getattr(self, key)


def services(profile: Profile = OPEN, users: Iterable[str] = ()) -> dict[str, Service]:
    """The services of a profile, in start order. ``users``: the SCRAM users the secured broker gets."""
    p = profile
    registry_what = (f"Apicurio Registry {APICURIO_VERSION} on {p.registry} (Confluent API at {CCOMPAT_PATH}"
                     + (f"; OpenID Connect via Keycloak realm {REALM})" if p.secure else ")"))
    if not p.secure:
        return {
            "kafka": Service("kafka", (p.kafka_port, p.controller_port), start_kafka, kafka_ready,
                             f"Apache Kafka {KAFKA_VERSION} (KRaft) on {p.bootstrap}"),
            "registry": Service("registry", (p.registry_port,), start_registry, registry_ready, registry_what),
        }
    users = tuple(users)
    return {
        "kafka": Service("kafka", (p.kafka_port, p.controller_port), start_kafka, kafka_ready,
                         f"Apache Kafka {KAFKA_VERSION} (KRaft) on {p.bootstrap}, SASL_SSL ({SCRAM_MECHANISM}), "
                         f"ACLs enforced",
                         after_ready=(lambda layout: ensure_scram_users(layout, users),)),
        "keycloak": Service("keycloak", (p.keycloak_port,), start_keycloak, keycloak_ready,
                            f"Keycloak {KEYCLOAK_VERSION} on http://{HOST}:{p.keycloak_port} (realm {REALM})",
                            after_ready=(ensure_realm,)),
        "registry": Service("registry", (p.registry_port,), start_registry, registry_ready, registry_what),
    }


SERVICES = services(OPEN)


def _wait_ready(layout: Layout, service: Service, pid: int, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if service.ready(layout=layout):
            return
        if not _pid_alive(pid):
            tail = _redact(layout, _log_tail(layout.logfile(service.name)))
            raise StackError(f"{service.name} exited during start-up; see {layout.logfile(service.name)}: {tail}")
        time.sleep(0.3)
    raise StackError(f"{service.name} did not answer within {deadline_s:.0f}s; see {layout.logfile(service.name)}")


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def layout_for(settings: Settings | None = None, secure: bool = False) -> Layout:
    return Layout((settings or get_settings()).home, SECURE if secure else OPEN)


def up(settings: Settings | None = None, fresh: bool = False, timeout: float = 180.0, secure: bool = False,
       users: Iterable[str] = ()) -> dict[str, str]:
    """Start what is not running; return {service: 'started' | 'already running'}.

    ``secure``: the secured profile (its own ports and state), with a SCRAM user for each of ``users``
    (besides the admin and the broker's own)."""
    layout = layout_for(settings, secure)
    specs = services(layout.profile, users)
    if fresh:
        down(settings, secure=secure)
        shutil.rmtree(layout.state, ignore_errors=True)
    layout.state.mkdir(parents=True, exist_ok=True)
    result: dict[str, str] = {}
    to_start = []
    for name in specs:
        if our_pid(layout, name) is not None:
            result[name] = "already running"
        else:
            to_start.append(name)
    if to_start:
        _java()
        fetch_kafka(layout)
        fetch_apicurio(layout)
        if layout.profile.secure:
            require_tool("openssl", "to make the secured stack's throwaway certificates")
            fetch_keycloak(layout)
    for name in to_start:
        _require_free(specs[name].ports, name, wait_s=0)
    started: dict[str, int] = {}
    for name in to_start:
        started[name] = specs[name].start(layout)
        result[name] = "started"
    for name, spec in specs.items():
        pid = started.get(name) or our_pid(layout, name) or -1
        if name in started or not spec.ready(layout=layout):
            _wait_ready(layout, spec, pid, timeout)
        for step in spec.after_ready:
            step(layout)
    return {name: result[name] for name in specs}


def down(settings: Settings | None = None, timeout: float = 30.0, secure: bool = False) -> dict[str, str]:
    """Stop only what `up` started."""
    layout = layout_for(settings, secure)
    return {service: _stop(layout, service, timeout) for service in reversed(list(services(layout.profile)))}


def _stop(layout: Layout, service: str, timeout: float = 30.0, kill: bool = False) -> str:
    """SIGTERM (SIGKILL after ``timeout``, or at once with ``kill``: a crash) to a service we started."""
    pid = our_pid(layout, service)
    if pid is None:
        return "not running"
    os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05 if kill else 0.2)
    if _pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.05)
    layout.pidfile(service).unlink(missing_ok=True)
    return "killed" if kill else "stopped"


def broker_up(profile: Profile = SPARE, settings: Settings | None = None, fresh: bool = False,
              timeout: float = 120.0) -> float:
    """Start only the broker of ``profile`` (a spare one, by default) and wait until it answers; the
    seconds that took. ``fresh``: its data wiped first."""
    layout = Layout((settings or get_settings()).home, profile)
    service = services(profile)["kafka"]
    started = time.monotonic()
    if fresh:
        _stop(layout, "kafka")
        shutil.rmtree(layout.state / "kafka", ignore_errors=True)
    pid = our_pid(layout, "kafka")
    if pid is None:
        _require_free(service.ports, f"the {profile.name} broker")
        layout.state.mkdir(parents=True, exist_ok=True)
        pid = start_kafka(layout)
    _wait_ready(layout, service, pid, timeout)
    return time.monotonic() - started


def broker_stop(profile: Profile = SPARE, settings: Settings | None = None, kill: bool = False,
                wipe: bool = False) -> str:
    """Stop the broker of ``profile`` (``kill``: SIGKILL, a crash); ``wipe``: delete its data too."""
    layout = Layout((settings or get_settings()).home, profile)
    result = _stop(layout, "kafka", kill=kill)
    if wipe:
        shutil.rmtree(layout.state, ignore_errors=True)
    return result


def status(settings: Settings | None = None, secure: bool = False) -> list[str]:
    layout = layout_for(settings, secure)
    lines = []
    for name, spec in services(layout.profile).items():
        pid = our_pid(layout, name)
        if pid is not None:
            health = "answering" if spec.ready(layout=layout) else "not answering yet"
            lines.append(f"{name}: running (pid {pid}, {health}): {spec.what}; "
                         f"log {layout.logfile(name)}")
        elif any(_port_open(port) for port in spec.ports):
            lines.append(f"{name}: port {spec.ports[0]} is served by a process not started by opengym")
        else:
            lines.append(f"{name}: stopped; log {layout.logfile(name)}")
    fresh = "`opengym stack up --secure --fresh`" if secure else "`opengym stack up --fresh`"
    lines.append(f"data: {layout.state} (kept across down/up; {fresh} wipes it)")
    if secure:
        lines.append(f"clients: `eval \"$(opengym stack env --secure)\"` (CA {layout.ca_file}, passwords in "
                     f"{layout.secrets})")
    return lines


def is_up(settings: Settings | None = None, secure: bool = False) -> bool:
    layout = layout_for(settings, secure)
    return all(spec.ready(layout=layout) for spec in services(layout.profile).values())
