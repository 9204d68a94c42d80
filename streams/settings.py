"""Every ``OPENGYM_*`` knob, declared once: environment variables with local defaults.

A knob is a dataclass field made with :func:`knob` (its variable, default and meaning); :func:`from_env`
reads any such dataclass from the environment. :class:`Settings` holds the library's own knobs; a system
declares its components' knobs the same way (``BookingConfig``, ``GatewayConfig``, ...), and durations of
its process catalog with :func:`env_ms`. Every knob declared either way lands in :data:`KNOBS`, from which
``opengym settings`` prints, and docs/settings.md is generated, the table of all of them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar
from urllib.parse import urlparse

CCOMPAT_PATH = "/apis/ccompat/v7"
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT: Path | None = (PACKAGE_DIR.parent if PACKAGE_DIR.name == "streams"
                         and (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None)
"""The repository the library runs from (``make install``'s editable install); None when installed from the wheel."""
REPO_ROOT = CHECKOUT or Path.cwd()
"""Where the generated docs go (``docs/catalog.md``, ``docs/settings.md``, ``docs/asyncapi/``): the checkout, or,
installed, the directory ``opengym`` runs in. Anything the library or a system needs at run time is package data."""

T = TypeVar("T")


@dataclass(frozen=True)
class Knob:
    env: str
    default: Any
    doc: str
    owner: str
    """Who reads it: ``streams`` for the library, else the class or catalog that declares it."""


KNOBS: dict[str, Knob] = {}
"""Every knob declared so far, by variable name (filled as modules declare them)."""


def _register(one: Knob) -> None:
    known = KNOBS.get(one.env)
    if known is None or known.owner == one.owner:
        KNOBS[one.env] = one
        return
    if known.default != one.default:
        raise ValueError(f"{one.env} is declared by {known.owner} (default {known.default!r}) and again by "
                         f"{one.owner} (default {one.default!r})")
    owners = sorted({*known.owner.split(", "), one.owner})
    KNOBS[one.env] = Knob(one.env, one.default, known.doc, ", ".join(owners))


def knob(env: str, default: Any, doc: str) -> Any:
    """A dataclass field read from ``env`` by :func:`from_env` (``default`` when unset or empty)."""
    return dataclasses.field(default=default, metadata={"env": env, "doc": doc})


def _parse(raw: str, kind: Any, env: str) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _parse(raw, options[0], env)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise ValueError(f"{env}={raw!r}: {exc}") from None


def knobs_of(cls: type) -> list[Knob]:
    """The knobs a :func:`knob`-dataclass declares (and registers them in :data:`KNOBS`)."""
    found = []
    for f in dataclasses.fields(cls):
        env = f.metadata.get("env")
        if env is None:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        one = Knob(env, default, f.metadata["doc"], f"{cls.__module__}.{cls.__qualname__}")
        _register(one)
        found.append(one)
    return found


def from_env(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """An instance of a :func:`knob`-dataclass with every knob read from the environment."""
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    knobs_of(cls)
    for f in dataclasses.fields(cls):
        env = f.metadata.get("env")
        if env is None or f.name in overrides:
            continue
        raw = environ.get(env)
        if raw is not None and raw.strip() != "":
            values[f.name] = _parse(raw, hints[f.name], env)
    return cls(**values, **overrides)


def env_ms(name: str, default_ms: int, doc: str = "", owner: str = "catalog") -> int:
    """A duration from ``OPENGYM_<NAME>_MS`` (tests set short deadlines this way), else the default."""
    env = f"OPENGYM_{name}_MS"
    _register(Knob(env, default_ms, doc or f"{name.replace('_', ' ').lower()} (ms)", owner))
    raw = os.environ.get(env)
    if raw is None or raw.strip() == "":
        return default_ms
    value = int(raw)
    if value < 0:
        raise ValueError(f"{env} must not be negative, got {value}")
    return value


def env_name(process_name: str) -> str:
    """``InstrumentConsumeProcess`` -> ``INSTRUMENT_CONSUME_PROCESS`` (for :func:`env_ms`)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", process_name).replace("-", "_").replace(" ", "_").upper()


def _registry_api_url(url: str) -> str:
    # A bare host:port means our Apicurio: its Confluent-compatible API lives under CCOMPAT_PATH.
    # A URL with a path is taken as given (a Confluent registry, or the ccompat path spelled out).
    url = url.rstrip("/")
    if urlparse(url).path in ("", "/"):
        return url + CCOMPAT_PATH
    return url


def _default_home() -> Path:
    return Path.home() / ".cache" / "opengym"


@dataclass(frozen=True)
class Settings:
    """The library's knobs: where the stack is, and how every worker runs."""

    bootstrap: str = knob("OPENGYM_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers")
    schema_registry: str = knob(
        "OPENGYM_SCHEMA_REGISTRY", "http://127.0.0.1:8081",
        "schema registry; a bare host means Apicurio (its Confluent API is under /apis/ccompat/v7), a URL "
        "with a path is taken as given")
    topic_prefix: str = knob("OPENGYM_TOPIC_PREFIX", "", "prepended to every topic name and app id (isolated runs)")
    home: Path = knob("OPENGYM_HOME", _default_home(), "the stack's jars, state and logs; workers' data dirs")
    system: str = knob("OPENGYM_SYSTEM", "", "the system to run: `package.module` or `package.module:ATTR` "
                       "holding a `streams.system.System` (empty: the installed default)")
    store: str = knob("OPENGYM_STORE", "memory", "table store: `memory` or `rocksdict` (tables on disk)")
    tick_interval: float = knob("OPENGYM_TICK_INTERVAL", 1.0, "seconds between clock ticks")
    producer_linger_ms: int = knob("OPENGYM_PRODUCER_LINGER_MS", 5, "producer linger (docs/performance.md)")
    fetch_max_wait_ms: int = knob("OPENGYM_FETCH_MAX_WAIT_MS", 50,
                                  "longest a fetch waits at the broker (Faust hard-codes 1500)")
    fetch_idle_wait_ms: int = knob("OPENGYM_FETCH_IDLE_WAIT_MS", 1000,
                                   "longest a fetch waits at the broker when it asks for every partition the "
                                   "worker holds there (any record ends it at once); 0: always the one above")
    drain_node: bool = knob("OPENGYM_DRAIN_NODE", True,
                            "one produce request per broker takes all its waiting batches (0: aiokafka's own)")
    redeliver_after_s: float = knob("OPENGYM_REDELIVER_AFTER_S", 5.0,
                                    "how long a commit may be held below a fetched message nobody acknowledged "
                                    "(while later ones were, or while its agents had nothing queued) before the worker "
                                    "seeks back to it")
    trace_offsets: str = knob("OPENGYM_TRACE_OFFSETS", "",
                              "a file every worker appends a JSON line to for each step of each input offset "
                              "(empty: off; `python -m opengym_streams.offset_trace <file>`)")
    standby_replicas: int = knob("OPENGYM_STANDBY_REPLICAS", 0,
                                 "Faust's table_standby_replicas (1 with two or more workers of a component)")
    instance_id: str = knob("OPENGYM_INSTANCE_ID", "",
                            "a stable name for this worker (a StatefulSet pod's, say), unique among its "
                            "component's workers: it joins its group as a static member, and a restart within "
                            "the session timeout takes its partitions back at once (empty: dynamic member)")
    batch_max: int = knob("OPENGYM_BATCH_MAX", 200, "most records an agent takes from Faust at once")
    batch_within_ms: int = knob("OPENGYM_BATCH_WITHIN_MS", 10,
                                "longest an agent waits to fill a batch (each hop's added latency is about half)")
    commit_interval: float = knob("OPENGYM_COMMIT_INTERVAL", 1.0,
                                  "seconds between offset commits (each one confirms outputs and writes changelogs)")
    deadline_grace_ms: int = knob("OPENGYM_DEADLINE_GRACE_MS", 1000,
                                  "how long past a deadline a tick waits before it times a step out (a reply "
                                  "dated in time may still be in flight; a replay after a crash then decides alike)")
    local_hops: bool = knob("OPENGYM_LOCAL_HOPS", True,
                            "hand a repartitioning hop to this worker's own agent when it holds the target "
                            "partition (no record; a responder's state is then durable before its answers "
                            "leave: docs/notes/components.md); 0: every hop through Kafka")
    metrics_port: int | None = knob("OPENGYM_METRICS_PORT", None,
                                    "a worker's /metrics port (empty: its component's port in the registry; 0: off)")
    metrics_addr: str = knob("OPENGYM_METRICS_ADDR", "127.0.0.1", "address /metrics binds to")
    max_clock_skew_ms: int = knob("OPENGYM_MAX_CLOCK_SKEW_MS", 60 * 60 * 1000,
                                  "an event dated further ahead of its broker timestamp is dead-lettered")
    max_event_age_ms: int = knob("OPENGYM_MAX_EVENT_AGE_MS", 30 * 24 * 60 * 60 * 1000,
                                 "an event dated further behind its broker timestamp is dead-lettered")
    dead_letter_payload_bytes: int = knob("OPENGYM_DEAD_LETTER_PAYLOAD_BYTES", 64 * 1024,
                                          "how much of a bad message a dead letter keeps (its length and "
                                          "hash are always kept)")
    max_message_bytes: int = knob("OPENGYM_MAX_MESSAGE_BYTES", 1_000_000,
                                  "largest record a worker publishes (below the broker's message.max.bytes)")
    kafka_heap: str = knob("OPENGYM_KAFKA_HEAP", "768m", "the local stack's broker heap (`opengym stack up`)")
    registry_heap: str = knob("OPENGYM_REGISTRY_HEAP", "512m", "the local stack's registry heap")
    keep_stack: bool = knob("OPENGYM_KEEP_STACK", False, "tests: leave running a stack the suite started")
    bench_loglevel: str = knob("OPENGYM_BENCH_LOGLEVEL", "warn", "log level of the workers a benchmark starts")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        return from_env(cls, environ, **overrides)

    @property
    def registry_url(self) -> str:
        """The Confluent-compatible API base URL, as confluent-kafka's clients want it."""
        return _registry_api_url(self.schema_registry)

    @property
    def registry_base(self) -> str:
        parsed = urlparse(self.schema_registry.rstrip("/"))
        return f"{parsed.scheme}://{parsed.netloc}"

    @property
    def store_url(self) -> str:
        store = self.store.strip().lower()
        if store in ("", "memory"):
            return "memory://"
        if store == "rocksdict":
            return "rocksdb://"  # Faust's rocksdb store runs on the rocksdict package when python-rocksdb is absent
        raise ValueError(f"OPENGYM_STORE={self.store!r}: use memory or rocksdict")


def get_settings() -> Settings:
    return Settings.from_env()


def knob_table(extra: Callable[[], object] | None = None, knobs: Mapping[str, Knob] | None = None) -> str:
    """Markdown table of ``knobs`` (default: every knob declared so far; call the system's builders first
    so theirs are in)."""
    if knobs is None:
        knobs_of(Settings)
        if extra is not None:
            extra()
        knobs = KNOBS
    rows = ["| variable | default | read by | meaning |", "| --- | --- | --- | --- |"]
    for one in sorted(knobs.values(), key=lambda k: (k.owner != "opengym_streams.settings.Settings", k.owner, k.env)):
        default = one.default
        if isinstance(default, Path) and default == _default_home():
            shown = "`~/.cache/opengym`"
        elif default in ("", None):
            shown = "empty"
        else:
            shown = f"`{default}`"
        readers = ", ".join(o.rsplit('.', 1)[-1] for o in one.owner.split(", "))
        rows.append(f"| `{one.env}` | {shown} | {readers} | {one.doc} |")
    return "\n".join(rows) + "\n"
