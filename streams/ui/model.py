"""What the pages show, as plain data computed from the observer's states on request (no Faust, no I/O).

Every function here reads states; none changes them. The list functions use only what a state holds
directly (fact types and times, reported anomaly keys, business ids), so a list over many transactions
costs a few dictionary reads each; the full three-level tree (``Observer.processes``) is derived only for
the one transaction a page shows, and for the overview at most once per cache period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from opengym_streams.catalog import Catalog
from opengym_streams.observer import (ACTIVE, COMPLETED, FACTS, REPORTED, Observer, business_ids, fact_source,
                              in_flight)

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Filters:
    process: str | None = None
    kind: str | None = None
    status: str | None = None
    """open | anomalous | closed | None (all)"""
    min_age_s: float | None = None
    q: str | None = None
    """A correlation id or business id, or a part of one."""
    limit: int = 200

    @classmethod
    def from_query(cls, query) -> "Filters":
        def text(name: str) -> str | None:
            value = (query.get(name) or "").strip()
            return value or None

        age = text("min_age_s")
        limit = text("limit")
        return cls(process=text("process"), kind=text("kind"), status=text("status"),
                   min_age_s=float(age) if age else None, q=text("q"), limit=int(limit) if limit else 200)


def process_of_event(catalog: Catalog) -> dict[str, set[str]]:
    """Event type -> the processes it plays a role in."""
    return {event: {role.process for role in roles} for event, roles in catalog.roles.items()}


def reported_kinds(state: dict) -> list[tuple[str, str, str]]:
    """(kind, process, occurrence) of every anomaly already reported for the transaction."""
    found = []
    for key in state.get(REPORTED, ()):
        kind, process, occurrence = (key.split("|", 2) + ["", ""])[:3]
        found.append((kind, process, occurrence))
    return found


def first_fact_at(state: dict) -> int | None:
    times = [f[1] for facts in state[FACTS].values() for f in facts]
    return min(times) if times else None


def status_of(state: dict) -> str:
    if state.get(REPORTED):
        return "anomalous"
    return "closed" if state.get(COMPLETED) is not None else "open"


def row(catalog: Catalog, roles: dict[str, set[str]], key: str, state: dict, now: int) -> dict[str, Any]:
    first = first_fact_at(state)
    processes: set[str] = set()
    transactions: set[str] = set()
    for event_type, records in state[FACTS].items():
        for role in catalog.roles.get(event_type, ()):
            if role.role == "hop" and role.index == 0 and not _chain_starts(catalog, role, records):
                continue  # e.g. an attendance that is not a partner visit starts no settlement
            processes.add(role.process)
            transactions.add(role.business_transaction)
    return {
        "correlation_id": key,
        "business_transactions": sorted(transactions),
        "processes": sorted(processes),
        "status": status_of(state),
        "closed": state.get(COMPLETED) is not None,
        "first_fact_at": first,
        "last_active_at": state.get(ACTIVE),
        "age_s": max(0, now - first) / 1000 if first is not None else None,
        "facts": sum(len(f) for f in state[FACTS].values()),
        "anomalies": [{"kind": k, "process": p} for k, p, _ in reported_kinds(state)],
        "ids": business_ids(state),
    }


def _chain_starts(catalog: Catalog, role, records) -> bool:
    hop = catalog.transaction(role.business_transaction).choreography.facts[0]
    return any(all((f[3] or {}).get(k) == v for k, v in hop.where) for f in records)


def matches(r: dict[str, Any], f: Filters) -> bool:
    if f.process and f.process not in r["processes"]:
        return False
    if f.kind and f.kind not in {a["kind"] for a in r["anomalies"]}:
        return False
    if f.status == "open" and r["closed"]:
        return False
    if f.status == "closed" and not r["closed"]:
        return False
    if f.status == "anomalous" and not r["anomalies"]:
        return False
    if f.min_age_s is not None and (r.get("age_s") is None or r["age_s"] < f.min_age_s or r["closed"]):
        return False
    if f.q:
        needle = f.q.lower()
        values = [r["correlation_id"]] + [v for vs in r["ids"].values() for v in vs]
        if not any(needle in v.lower() for v in values):
            return False
    return True


def transactions(observer: Observer, items: Iterable[tuple[str, dict]], now: int, f: Filters,
                 cache: dict[str, tuple[dict, dict]] | None = None) -> dict[str, Any]:
    """The rows that match, newest first, at most ``f.limit`` (and how many matched in all). ``cache``:
    rows computed before, by key, with the state they came from (reused while the key holds that state)."""
    roles = process_of_event(observer.catalog)
    items = list(items)
    rows = []
    total = 0
    for key, state in items:
        if not state or FACTS not in state:
            continue
        total += 1
        kept = cache.get(key) if cache is not None else None
        if kept is not None and kept[0] is state:
            r = kept[1]
        else:
            r = row(observer.catalog, roles, key, state, now)
            if cache is not None:
                cache[key] = (state, r)
        if f.min_age_s is not None:
            r = _aged(r, now)
        if matches(r, f):
            rows.append(r)
    if cache is not None and len(cache) > 2 * total + 100:  # keys the table no longer holds
        held = {key for key, _ in items}
        for key in [k for k in cache if k not in held]:
            del cache[key]
    rows.sort(key=lambda r: (r["first_fact_at"] or 0), reverse=True)
    return {"now": now, "matched": len(rows), "held": total, "shown": min(len(rows), f.limit),
            "rows": [_aged(r, now) for r in rows[:f.limit]]}


def _aged(r: dict[str, Any], now: int) -> dict[str, Any]:
    """The row with its age at ``now`` (a copy: the cached row stays as computed)."""
    first = r["first_fact_at"]
    return {**r, "age_s": max(0, now - first) / 1000 if first is not None else None}


def expectation_json(e, now: int, grace: int, reported: set[str] = frozenset()) -> dict[str, Any]:
    return {"kind": e.kind, "occurrence": e.key, "expected": e.expected, "since": e.since,
            "deadline": e.deadline, "met_at": e.met_at, "status": e.status(now, grace), "owner": e.owner,
            "cause": e.cause, "reported": f"{e.kind}|{e.process}|{e.key}" in reported}


def owner_of(catalog: Catalog, process: str) -> str | None:
    for bt in catalog.transactions:
        for proc in bt.processes():
            if proc.name == process:
                return getattr(proc, "owner", None)
    return None


def transaction(observer: Observer, key: str, state: dict, now: int) -> dict[str, Any]:
    """One transaction: the tree, every fact with where it was read, its anomalies and a timeline."""
    grace = observer.config.grace_ms
    views = observer.processes(state, now)
    expectations = observer.expectations(state)
    by_key = {(e.kind, e.process, e.key): e for e in expectations}
    reported = set(state.get(REPORTED, ()))
    tree = []
    for v in views:
        tree.append({
            "business_transaction": v.business_transaction, "process": v.process, "level": v.level,
            "owner": owner_of(observer.catalog, v.process), "status": v.status, "started_at": v.started_at,
            "ended_at": v.ended_at, "outcome": v.outcome,
            "expectations": [expectation_json(e, now, grace, reported) for e in v.expectations],
        })
    facts = []
    for event_type, records in state[FACTS].items():
        for f in records:
            source = fact_source(f)
            facts.append({"type": event_type, "event_id": f[0], "occurred_at": f[1], "causation_id": f[2],
                          "attrs": f[3], "topic": source[0] if source else None,
                          "partition": source[1] if source else None, "offset": source[2] if source else None})
    facts.sort(key=lambda f: (f["occurred_at"], f["type"]))
    anomalies = []
    for kind, process, occurrence in reported_kinds(state):
        e = by_key.get((kind, process, occurrence)) or by_key.get(("NESTED_TIMEOUT", process, occurrence))
        anomalies.append({"kind": kind, "process": process, "occurrence": occurrence,
                          "expected": e.expected if e else None, "since": e.since if e else None,
                          "deadline": e.deadline if e else None,
                          "owner": e.owner if e else owner_of(observer.catalog, process)})
    timeline = [{"at": f["occurred_at"], "what": "fact", "label": f["type"], "detail": f["topic"] or ""}
                for f in facts]
    for e in expectations:
        status = e.status(now, grace)
        if status in ("open", "overdue", "late"):
            timeline.append({"at": e.deadline, "what": f"deadline ({status})",
                             "label": f"{e.process}: {e.expected}", "detail": e.kind})
    timeline.sort(key=lambda t: t["at"])
    return {"correlation_id": key, "now": now, "status": status_of(state), "closed_at": state.get(COMPLETED),
            "ids": business_ids(state), "processes": tree, "facts": facts, "anomalies": anomalies,
            "timeline": timeline}


@dataclass
class Overview:
    now: int
    in_flight: dict[str, int]
    oldest_open_s: dict[tuple[str, str], float]
    anomalies_last_hour: dict[str, int]
    held: int
    by_status: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"now": self.now, "in_flight": self.in_flight,
                "oldest_open_s": [{"business_transaction": bt, "process": p, "age_s": age}
                                  for (bt, p), age in self.oldest_open_s.items()],
                "anomalies_last_hour": self.anomalies_last_hour, "held": self.held, "by_status": self.by_status}


def overview(observer: Observer, states: list[dict], now: int, anomalies: Iterable[Any],
             in_flight_now: tuple[dict, dict] | None = None) -> Overview:
    """In flight and oldest open age per process (as the gauges compute them; ``in_flight_now``: the
    gauges' last values), anomalies by kind whose detection (observer time) falls in the last hour."""
    counts, oldest = in_flight_now if in_flight_now is not None else in_flight(observer, states, now)
    by_kind: dict[str, int] = {}
    for a in anomalies:
        if a.detected_at >= now - HOUR_MS:
            by_kind[a.kind.value] = by_kind.get(a.kind.value, 0) + 1
    statuses: dict[str, int] = {}
    for state in states:
        s = status_of(state)
        statuses[s] = statuses.get(s, 0) + 1
    return Overview(now, counts, oldest, dict(sorted(by_kind.items())), len(states), statuses)


def mermaid(catalog: Catalog) -> list[str]:
    """One Mermaid flowchart per business transaction (the diagrams of docs/catalog.md; a chain of facts
    alone reads left to right)."""
    from opengym_streams.catalog_docs import _tree

    found = []
    for bt in catalog.transactions:
        lines = _tree(bt)[1:-1]
        if bt.orchestration is None:
            lines[0] = lines[0].replace("flowchart TD", "flowchart LR")
        found.append("\n".join(lines))
    return found
