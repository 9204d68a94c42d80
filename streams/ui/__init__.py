"""The transaction view: web pages and a JSON API served by an observer worker on Faust's web server.

One entry point, :func:`install_ui`, given everything it shows: the Faust app, the observer's table of
transaction states, the engine and its clock, the dead-letter, redrive and anomaly topics. Nothing here
knows OpenGym: the caller hands the catalog in (through the engine).

Pages (server-rendered HTML; ``ui.js`` refreshes them in place every few seconds):

- ``/`` overview: in flight per business transaction, oldest open age per process, anomalies by kind in
  the last hour (observer time), the catalog's three-level trees as Mermaid diagrams;
- ``/transactions``: open, anomalous and recently closed transactions, filtered by status, process,
  anomaly kind and age, searched by correlation id or any business id a fact carried;
- ``/transactions/<id>``: the tree with every expectation met / late / open / overdue and its deadline,
  every fact with time, topic, partition, offset, event id and causation, the anomalies with their alert
  and runbook section, the transaction's dead letters, and a timeline;
- ``/dead-letters``: every component's dead letters with reason, source and decoded payload, and a
  redrive of the chosen ones (:mod:`streams.deadletters`);
- ``/runbook``: the runbook, so an anomaly's link lands on its section.

The same data as JSON under ``/api/...``. A transaction lives on the worker that owns its key's
partition: its page and API are proxied there (as Faust's ``table_route`` would, but deciding by the
partitions each worker's consumer holds: :meth:`UI.owner_url`); lists gather every worker's part.

Cost: nothing per event. Pages compute on request from the table (lists from what each state holds
directly; the tree only for the one transaction shown). Anomalies, dead letters and redrives come from
a background thread tailing their topics (a handful of messages, not the fact stream).
"""

from __future__ import annotations

import asyncio
import collections
import getpass
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from dataclasses import dataclass

from opengym_streams.settings import CHECKOUT, from_env, knob

log = logging.getLogger("opengym.ui")


@dataclass(frozen=True)
class UIConfig:
    port: int | None = knob("OPENGYM_UI_PORT", None,
                            "the observer's transaction view (empty: 6108, or a free port when that is taken; 0: off)")
    addr: str = knob("OPENGYM_UI_ADDR", "127.0.0.1", "where the transaction view listens")
    host: str = knob("OPENGYM_UI_HOST", "", "the name other observer workers reach it by (empty: the address)")
    url: str = knob("OPENGYM_UI_URL", "", "where `opengym trace`, `transactions` and `dlq` find a running observer "
                    "(empty: http://127.0.0.1:<OPENGYM_UI_PORT or 6108>)")
    alertmanager_url: str = knob("OPENGYM_ALERTMANAGER_URL", "", "Alertmanager the UI links each anomaly's alert to")
    mermaid_dir: Path | None = knob("OPENGYM_MERMAID_DIR", None,
                                    "a Mermaid `dist` directory the overview's diagrams render with (empty: "
                                    "tools/node's in a checkout; an installed wheel has none: diagrams show as source)")

    @classmethod
    def from_env(cls) -> "UIConfig":
        return from_env(cls)

DEFAULT_PORT = 6108
ANOMALY_WINDOW_MS = 3_600_000
MAX_ANOMALIES = 50_000
OVERVIEW_CACHE_S = 2.0
GAUGES_FRESH_S = 10.0
"""How old the observer's last gauge export may be for the overview to show it (exported every 5 s)."""
PEER_CACHE_S = 2.0
STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".css": "text/css", ".js": "application/javascript", ".map": "application/json"}


def configured_mermaid_dir() -> Path | None:
    """``OPENGYM_MERMAID_DIR``, else the bundle ``make install`` puts in a checkout's tools/node (the wheel ships
    none)."""
    configured = UIConfig.from_env().mermaid_dir
    if configured is not None:
        return configured
    return CHECKOUT / "tools" / "node" / "node_modules" / "mermaid" / "dist" if CHECKOUT else None


def ui_port() -> int:
    """``OPENGYM_UI_PORT`` (0: no web server); unset, 6108, or a free port when 6108 is taken."""
    configured = UIConfig.from_env().port
    if configured is not None:
        return configured
    return DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port()


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure_web(app, port: int | None = None) -> str | None:
    """Point the app's web server at the UI's port and address; its URL, or None when disabled.

    ``OPENGYM_UI_ADDR`` (default 127.0.0.1) is where it listens, ``OPENGYM_UI_HOST`` the name other
    workers reach it by (to route a key's page there; default the address)."""
    port = ui_port() if port is None else port
    if port == 0:
        return None
    config = UIConfig.from_env()
    bind = config.addr
    host = config.host or bind
    app.conf.web_port = port
    app.conf.web_bind = bind
    app.conf.web_host = host
    app.conf.canonical_url = f"http://{host}:{port}"
    return f"http://{host}:{port}"


class UI:
    """The state behind the pages: what the tails have read, and the caches."""

    def __init__(self, app, *, table, observer, clock: Callable[[], int], anomalies_topic: str,
                 dead_letter_topics: Mapping[str, str], redrive_topics: Mapping[str, str],
                 codec_factory: Callable[[], Any], producer_factory: Callable[[], Any],
                 rules_file: Path | None, runbook_file: Path | None, mermaid_dir: Path | None,
                 alertmanager_url: str | None, prefix: str = "", route_topic: str | None = None):
        from opengym_streams.deadletters import Book
        from opengym_streams.ui.links import alerts_by_kind
        from opengym_streams.ui.pages import Links

        self.app = app
        self.table = table
        self.observer = observer
        self.clock = clock
        self.anomalies_topic = anomalies_topic
        self.dead_letter_topics = dict(dead_letter_topics)
        self.redrive_topics = dict(redrive_topics)
        self.codec_factory = codec_factory
        self.producer_factory = producer_factory
        self.runbook_file = runbook_file
        self.mermaid_dir = mermaid_dir
        self.prefix = prefix
        self.route_topic = route_topic
        self.links = Links(alerts_by_kind(rules_file), alertmanager_url)
        self.lock = threading.Lock()
        self.anomalies: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._codec = None
        self.book = Book(lambda payload: self.codec.decode(payload))
        self._overview: tuple[float, dict] | None = None
        self.gauges: Callable[[], tuple[float, dict, dict] | None] = lambda: None
        """The observer's last gauge export ``(monotonic time, in flight, oldest open)``: the overview shows
        it instead of walking every open transaction again (set by the observer's wiring)."""
        self.rows: dict[str, tuple[dict, dict]] = {}
        """correlation id -> (the state a list row was computed from, that row): a row is computed again
        only when its state changed (states are replaced, never changed in place)."""
        self._static: dict[str, bytes] = {}
        self._producer = None
        self._health: dict[str, tuple[float, dict | None]] = {}
        self.tails = []

    @property
    def codec(self):
        if self._codec is None:
            self._codec = self.codec_factory()
        return self._codec

    # ---- background reading of anomalies, dead letters and redrives ---------------------------

    def start(self) -> None:
        from opengym_streams.kafka_read import TopicTail

        self.tails = [
            TopicTail(lambda: [self.anomalies_topic], self._on_anomaly,
                      start_ms=lambda: int(time.time() * 1000) - 2 * ANOMALY_WINDOW_MS, name="ui-anomalies"),
            TopicTail(lambda: list(self.redrive_topics.values()) + list(self.dead_letter_topics.values()),
                      self._on_letter, name="ui-dead-letters"),
        ]
        for tail in self.tails:
            tail.start()

    def stop(self) -> None:
        for tail in self.tails:
            tail.stop()

    def _decode(self, msg):
        try:
            return self.codec.decode(msg.value())
        except Exception:  # what cannot be decoded is the runtime's to dead-letter, not ours
            return None

    def _on_anomaly(self, msg) -> None:
        event = self._decode(msg)
        if event is None or event.type_name != "AnomalyDetected":
            return
        with self.lock:
            self.anomalies[event.anomaly_id] = event
            while len(self.anomalies) > MAX_ANOMALIES:
                self.anomalies.popitem(last=False)

    def _on_letter(self, msg) -> None:
        event = self._decode(msg)
        if event is None:
            return
        with self.lock:
            self.book.add(event, msg.topic(), msg.partition(), msg.offset())

    def anomalies_of(self, correlation_id: str) -> list[Any]:
        with self.lock:
            return [a for a in self.anomalies.values() if a.correlation_id == correlation_id]

    def letters(self, **filters) -> list[dict[str, Any]]:
        from opengym_streams.deadletters import select

        with self.lock:
            return [e.summary() for e in select(self.book.all(), **filters)]

    def caught_up(self) -> bool:
        return all(t.caught_up.is_set() for t in self.tails)

    def redrive(self, ids: Iterable[str], who: str) -> dict[str, Any]:
        """Blocking (a producer flush per letter): call it in a thread."""
        from opengym_streams.deadletters import redrive, select

        with self.lock:
            chosen = select(self.book.all(), ids=list(ids))
        if self._producer is None:
            self._producer = self.producer_factory()
        result = redrive(chosen, book=self.book, producer=self._producer, encode=self.codec.encode,
                         redrive_topics=self.redrive_topics, redriven_by=who)
        return {"sent": [e.id for e in result.sent], "already": [e.id for e in result.already],
                "skipped": [{"id": e.id, "why": why} for e, why in result.skipped], "summary": result.line()}

    # ---- what the pages compute -----------------------------------------------------------------

    def now(self) -> int:
        return self.clock() or int(time.time() * 1000)

    def local_items(self) -> list[tuple[str, dict]]:
        """The states of the partitions this worker holds now (a memory table keeps the keys of partitions
        it gave away in a rebalance; those belong to another worker's list)."""
        mine = self.my_partitions()
        if mine is None or mine == set(range(self.table.partitions)):
            return [(k, v) for k, v in list(self.table.items()) if v]
        return [(k, v) for k, v in list(self.table.items()) if v and self.partition_of(k) in mine]

    def overview_local(self) -> dict[str, Any]:
        from opengym_streams.ui import model

        cached = self._overview
        if cached is not None and time.monotonic() - cached[0] < OVERVIEW_CACHE_S:
            return cached[1]
        with self.lock:
            anomalies = list(self.anomalies.values())
        now = self.now()
        gauges = self.gauges() if self._holds_every_partition() else None
        fresh = gauges if gauges is not None and time.monotonic() - gauges[0] < GAUGES_FRESH_S else None
        data = model.overview(self.observer, [v for _, v in self.local_items()], now, anomalies,
                              in_flight_now=fresh[1:] if fresh else None).as_json()
        self._overview = (time.monotonic(), data)
        return data

    def transactions_local(self, filters) -> dict[str, Any]:
        from opengym_streams.ui import model

        return model.transactions(self.observer, self.local_items(), self.now(), filters, self.rows)

    def _holds_every_partition(self) -> bool:
        mine = self.my_partitions()
        return mine is None or mine == set(range(self.table.partitions))

    def transaction(self, cid: str) -> dict[str, Any] | None:
        from opengym_streams.ui import model

        state = self.table.get(cid)
        if not state:
            return None
        data = model.transaction(self.observer, cid, state, self.now())
        data["state"] = state
        return data

    # ---- other workers ----------------------------------------------------------------------------

    def partition_of(self, key: str) -> int:
        from opengym_streams.tables import partition_of

        return partition_of(key, self.table.partitions)  # murmur2, cached per key (a list asks for every key)

    def my_partitions(self) -> set[int] | None:
        """The partitions of ``route_topic`` (co-partitioned with the table) this worker's consumer holds
        now; None when it cannot say (not started, between assignments)."""
        try:
            assigned = self.app.consumer.assignment()
        except Exception:
            return None
        mine = {tp.partition for tp in assigned if tp.topic == self.route_topic}
        return mine or None

    async def owner_url(self, key: str) -> str | None:
        """The URL of the other worker holding ``key``'s partition; None when it is this one (or unknown).

        Each worker says which partitions its consumer holds (``/api/health``), and that is what decides:
        Faust's router (``table_route``) answered with the wrong worker in a two-worker test and misses the
        table on a fresh start (docs/notes/observer.md)."""
        partition = self.partition_of(key)
        mine = self.my_partitions()
        if mine is None or partition in mine:
            return None
        for peer in self.peers():
            health = await self._peer_health(peer)
            if partition in (health or {}).get("partitions", ()):
                return peer
        return None

    async def _peer_health(self, peer: str) -> dict | None:
        cached = self._health.get(peer)
        if cached is not None and time.monotonic() - cached[0] < PEER_CACHE_S:
            return cached[1]
        try:
            async with self.app.http_client.get(f"{peer}/api/health", timeout=5) as response:
                health = await response.json()
        except Exception as exc:
            log.warning("ui: %s did not answer /api/health: %s", peer, exc)
            health = None
        self._health[peer] = (time.monotonic(), health)
        return health

    def is_me(self, url: str) -> bool:
        return url.rstrip("/") == str(self.app.conf.canonical_url).rstrip("/")

    def peers(self) -> list[str]:
        """Canonical URLs of the other workers holding partitions of the table."""
        hosts: set[str] = set()
        for lookup in (lambda: self.app.router.table_metadata(self.table.name),
                       lambda: self.app.router.external_topics_metadata()):
            try:
                hosts |= {str(h).rstrip("/") for h in lookup()}
            except Exception:  # no assignment yet
                pass
        me = str(self.app.conf.canonical_url).rstrip("/")
        return sorted(hosts - {me})

    async def gather(self, path: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """The same API call answered by every other worker from its own partitions."""
        from urllib.parse import urlencode

        found = []
        for peer in self.peers():
            url = f"{peer}{path}?{urlencode({**query, 'local': '1'})}"
            try:
                async with self.app.http_client.get(url, timeout=5) as response:
                    found.append(await response.json())
            except Exception as exc:
                log.warning("ui: %s did not answer %s: %s", peer, path, exc)
                found.append({"error": f"{peer}: {exc}"})
        return found

    def static(self, name: str) -> tuple[bytes, str] | None:
        if name not in self._static:
            if name.startswith("mermaid/"):
                base, rel = self.mermaid_dir, name.split("/", 1)[1]
            else:
                base, rel = STATIC_DIR, name
            if base is None or "/" in rel or rel.startswith("."):
                return None
            path = Path(base) / rel
            if not path.is_file():
                return None
            self._static[name] = path.read_bytes()
        return self._static[name], CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")

    def mermaid_available(self) -> bool:
        return self.mermaid_dir is not None and (Path(self.mermaid_dir) / "mermaid.min.js").is_file()


def merge_transactions(parts: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    rows = [r for p in parts for r in p.get("rows", ())]
    rows.sort(key=lambda r: (r["first_fact_at"] or 0), reverse=True)
    matched = sum(p.get("matched", 0) for p in parts)
    return {"now": max((p.get("now", 0) for p in parts), default=0), "matched": matched,
            "held": sum(p.get("held", 0) for p in parts), "shown": min(len(rows), limit), "rows": rows[:limit],
            "errors": [p["error"] for p in parts if "error" in p]}


def merge_overviews(parts: list[dict[str, Any]]) -> dict[str, Any]:
    first = dict(parts[0])
    in_flight: dict[str, int] = {}
    oldest: dict[tuple[str, str], float] = {}
    statuses: dict[str, int] = {}
    for p in parts:
        if "error" in p:
            continue
        for bt, n in p["in_flight"].items():
            in_flight[bt] = in_flight.get(bt, 0) + n
        for o in p["oldest_open_s"]:
            key = (o["business_transaction"], o["process"])
            oldest[key] = max(oldest.get(key, 0.0), o["age_s"])
        for s, n in p["by_status"].items():
            statuses[s] = statuses.get(s, 0) + n
    first.update(in_flight=in_flight, by_status=statuses, held=sum(p.get("held", 0) for p in parts),
                 oldest_open_s=[{"business_transaction": bt, "process": pr, "age_s": age}
                                for (bt, pr), age in oldest.items()],
                 errors=[p["error"] for p in parts if "error" in p])
    return first


def install_ui(app, *, table, observer, clock: Callable[[], int], anomalies_topic: str,
               dead_letter_topics: Mapping[str, str], redrive_topics: Mapping[str, str],
               codec_factory: Callable[[], Any], producer_factory: Callable[[], Any] | None = None,
               rules_file: Path | None = None, runbook_file: Path | None = None,
               mermaid_dir: Path | None = None, alertmanager_url: str | None = None,
               prefix: str = "", route_topic: str | None = None, port: int | None = None) -> UI:
    """Serve the transaction view from ``app``'s web server (see the module doc).

    ``table``: the observer's Faust table of states; ``observer``: the engine (its catalog is what the
    pages show); ``clock()``: the observer's time (0 before its first tick: wall-clock time is used);
    topics by runtime name, dead letters and redrives per component; ``codec_factory()`` and
    ``producer_factory()`` make the Avro codec and the Kafka producer a redrive uses; ``rules_file`` and
    ``runbook_file`` link each anomaly to its alert and runbook section; ``mermaid_dir`` holds the Mermaid bundle
    (default :func:`configured_mermaid_dir`); ``route_topic``: an input topic
    co-partitioned with the table, whose assignment says which worker holds a key. The web server listens on
    ``OPENGYM_UI_PORT`` (default 6108, or a free port when that is taken; 0 turns it off)."""
    from opengym_streams.kafka import producer

    url = configure_web(app, port)
    ui = UI(app, table=table, observer=observer, clock=clock, anomalies_topic=anomalies_topic,
            dead_letter_topics=dead_letter_topics, redrive_topics=redrive_topics, codec_factory=codec_factory,
            producer_factory=producer_factory or producer, rules_file=rules_file, runbook_file=runbook_file,
            mermaid_dir=mermaid_dir or configured_mermaid_dir(), alertmanager_url=alertmanager_url, prefix=prefix,
            route_topic=route_topic)
    ui.url = url
    if url is None:
        return ui
    from opengym_streams.ui.views import register

    register(app, ui)

    @app.task
    async def _start_ui() -> None:
        if not app.conf.web_enabled:  # `faust worker --without-web`: no pages, so nothing to read for them
            return
        log.info("transaction view on %s (partitions of %s)", url, table.name)
        ui.start()

    return ui


__all__ = ["UI", "install_ui", "configure_web", "ui_port"]
