"""The local stack: a single-node KRaft Apache Kafka broker and Apicurio Registry, from Maven Central.

Artifacts are fetched once into ``$OPENGYM_HOME/dist`` (default ``~/.cache/opengym``); broker data,
registry data, pid files and logs live under ``$OPENGYM_HOME/state``. Nothing is written in the repo.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from opengym_streams.settings import CCOMPAT_PATH, Settings, get_settings

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = "3.0.9"

KAFKA_PORT = 9092
CONTROLLER_PORT = 9093
REGISTRY_PORT = 8081
HOST = "127.0.0.1"


class StackError(RuntimeError):
    """A problem the user must fix; the message is one clear line."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    home: Path

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
    def state(self) -> Path:
        return self.home / "state"

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


# ---------------------------------------------------------------------------------------------
# Processes


def _port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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


def _marker(service: str) -> str:
    return f"-Dopengym.service={service}"


def our_pid(layout: Layout, service: str) -> int | None:
    """The pid of the service we started, if it still runs (a reused pid is not ours)."""
    pidfile = layout.pidfile(service)
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if _pid_alive(pid) and _marker(service) in _cmdline(pid):
        return pid
    pidfile.unlink(missing_ok=True)
    return None


def _spawn(layout: Layout, service: str, argv: list[str], cwd: Path) -> int:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log = open(layout.logfile(service), "ab")
    log.write(f"\n==== opengym stack up {service} at {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
    log.flush()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    layout.pidfile(service).write_text(str(proc.pid))
    return proc.pid


def _kafka_properties(layout: Layout) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{CONTROLLER_PORT}",
        f"listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
    layout.kafka_config.write_text(_kafka_properties(layout))
    classpath = f"{libs}/*"
    log4j = f"-Dlog4j2.configurationFile={libs / 'log4j2.xml'}"
    if not (layout.kafka_data / "meta.properties").exists():
        layout.kafka_data.mkdir(parents=True, exist_ok=True)
        cluster_id = uuid.uuid4().hex[:22]
        fmt = subprocess.run(
            [java, log4j, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(layout.kafka_config)], capture_output=True, text=True)
        if fmt.returncode != 0:
            raise StackError(f"formatting the Kafka log dir failed: {fmt.stderr.strip()[-300:]}")
    heap = get_settings().kafka_heap
    return _spawn(layout, "kafka", [
        java, _marker("kafka"), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", log4j,
        "-Djava.awt.headless=true", "-cp", classpath, "kafka.Kafka", str(layout.kafka_config),
    ], cwd=layout.state)


def start_registry(layout: Layout) -> int:
    java = _java()
    root = fetch_apicurio(layout)
    layout.registry_data.mkdir(parents=True, exist_ok=True)
    heap = get_settings().registry_heap
    db = layout.registry_data / "registry"
    return _spawn(layout, "registry", [
        java, _marker("registry"), f"-Xmx{heap}",
        f"-Dquarkus.http.host={HOST}", f"-Dquarkus.http.port={REGISTRY_PORT}",
        "-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=h2",
        # A file-backed H2 keeps registered schemas (and so their ids) across down/up.
        f"-Dapicurio.datasource.url=jdbc:h2:file:{db};DB_CLOSE_ON_EXIT=FALSE",
        "-Dapicurio.datasource.username=sa", "-Dapicurio.datasource.password=sa",
        "-Dquarkus.log.level=WARN", "-Dquarkus.log.category.\"io.apicurio\".level=INFO",
        "-Dquarkus.http.access-log.enabled=false",
        "-jar", str(_apicurio_jar(root)),
    ], cwd=layout.registry_data)


def kafka_ready(timeout: float = 2.0) -> bool:
    from confluent_kafka.admin import AdminClient

    from opengym_streams.kafka import QUIET_LOGGER

    admin = AdminClient({"bootstrap.servers": f"{HOST}:{KAFKA_PORT}", "logger": QUIET_LOGGER})
    try:
        admin.list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def registry_ready(timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{REGISTRY_PORT}{CCOMPAT_PATH}/subjects",
                                    timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


SERVICES = {
    "kafka": {"ports": (KAFKA_PORT, CONTROLLER_PORT), "start": start_kafka, "ready": kafka_ready,
              "what": f"Apache Kafka {KAFKA_VERSION} (KRaft) on {HOST}:{KAFKA_PORT}"},
    "registry": {"ports": (REGISTRY_PORT,), "start": start_registry, "ready": registry_ready,
                 "what": f"Apicurio Registry {APICURIO_VERSION} on http://{HOST}:{REGISTRY_PORT}"
                         f" (Confluent API at {CCOMPAT_PATH})"},
}


def _wait_ready(layout: Layout, service: str, pid: int, deadline_s: float) -> None:
    spec = SERVICES[service]
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if spec["ready"]():
            return
        if not _pid_alive(pid):
            tail = _log_tail(layout.logfile(service))
            raise StackError(f"{service} exited during start-up; see {layout.logfile(service)}: {tail}")
        time.sleep(0.3)
    raise StackError(f"{service} did not answer within {deadline_s:.0f}s; see {layout.logfile(service)}")


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def up(settings: Settings | None = None, fresh: bool = False, timeout: float = 180.0) -> dict[str, str]:
    """Start what is not running; return {service: 'started' | 'already running'}."""
    layout = Layout((settings or get_settings()).home)
    if fresh:
        down(settings)
        shutil.rmtree(layout.state, ignore_errors=True)
    layout.state.mkdir(parents=True, exist_ok=True)
    result: dict[str, str] = {}
    to_start = []
    for service in SERVICES:
        if our_pid(layout, service) is not None:
            result[service] = "already running"
        else:
            to_start.append(service)
    if to_start:
        _java()
        fetch_kafka(layout)
        fetch_apicurio(layout)
    for service in to_start:
        busy = [port for port in SERVICES[service]["ports"] if _port_open(port)]
        if busy:
            raise StackError(f"port {busy[0]} on {HOST} is taken by another process (not started by "
                             f"`opengym stack up`); stop it or free the port before starting {service}")
    started: list[tuple[str, int]] = []
    for service in to_start:
        started.append((service, SERVICES[service]["start"](layout)))
        result[service] = "started"
    for service, pid in started:
        _wait_ready(layout, service, pid, timeout)
    for service, pid_state in result.items():
        if pid_state == "already running" and not SERVICES[service]["ready"]():
            _wait_ready(layout, service, our_pid(layout, service) or -1, timeout)
    return result


def down(settings: Settings | None = None, timeout: float = 30.0) -> dict[str, str]:
    """Stop only what `up` started."""
    layout = Layout((settings or get_settings()).home)
    result: dict[str, str] = {}
    for service in reversed(list(SERVICES)):
        pid = our_pid(layout, service)
        if pid is None:
            result[service] = "not running"
            continue
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        layout.pidfile(service).unlink(missing_ok=True)
        result[service] = "stopped"
    return result


def status(settings: Settings | None = None) -> list[str]:
    layout = Layout((settings or get_settings()).home)
    lines = []
    for service, spec in SERVICES.items():
        pid = our_pid(layout, service)
        if pid is not None:
            health = "answering" if spec["ready"]() else "not answering yet"
            lines.append(f"{service}: running (pid {pid}, {health}): {spec['what']}; "
                         f"log {layout.logfile(service)}")
        elif any(_port_open(port) for port in spec["ports"]):
            lines.append(f"{service}: port {spec['ports'][0]} is served by a process not started by opengym")
        else:
            lines.append(f"{service}: stopped; log {layout.logfile(service)}")
    lines.append(f"data: {layout.state} (kept across down/up; `opengym stack up --fresh` wipes it)")
    return lines


def is_up(settings: Settings | None = None) -> bool:
    return kafka_ready() and registry_ready()
