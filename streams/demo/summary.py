"""The demo's summary table: a system's own sections, then what every run reports the same way
(redeliveries, dead letters, the observer's anomalies, the invariants).

A system's summary is a :class:`Report` whose :meth:`Report.body` writes its sections into a :class:`Table`;
:func:`render` frames it and adds the common tail. :func:`latencies` measures request to terminal event,
which every system with an orchestration has.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from opengym_streams.demo.facts import Facts, symbol

RULE = "=" * 64


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Table:
    """Rows of a label and a value, labels aligned; sections indent their rows."""

    WIDTH = 44

    def __init__(self) -> None:
        self.lines: list[str] = []

    def row(self, label: str, value="", indent: int = 0) -> None:
        self.lines.append(f"{'  ' * indent}{label:<{self.WIDTH - 2 * indent}} {value}".rstrip())

    def blank(self) -> None:
        self.lines.append("")

    def count(self, label: str, n: int, indent: int = 1) -> None:
        self.row(label, f"{n:>6}", indent)

    def latency(self, title: str, latency_ms: dict[str, float | None], throughput: float | None, span_s: float | None,
                per: str) -> None:
        """The latency percentiles and the throughput rows."""
        self.row(title, "")
        for name in ("p50", "p95", "p99", "max"):
            value = latency_ms.get(name)
            self.row(name, f"{value:>6.0f}" if value is not None else "     -", 1)
        self.row(f"Throughput ({per}/s)", f"{throughput:>8.1f}" if throughput else "     -")
        if span_s:
            self.row("first request -> last terminal (s)", f"{span_s:>8.1f}", 1)


@dataclass
class Report:
    """What every run reports the same way; a system's summary extends it with its own fields."""

    redelivered: int = 0
    dead_letters: Counter = field(default_factory=Counter)
    anomalies: Counter = field(default_factory=Counter)
    """What the correlation observer reported about these transactions, by anomaly kind."""
    violations: list[str] = field(default_factory=list)

    def body(self, table: Table) -> None:
        """The system's own sections (nothing here)."""

    def observe(self, facts: Facts, ids: Iterable[str]) -> None:
        """Fill in the common fields from the facts of these transactions."""
        ids = set(ids)
        self.redelivered = sum(facts.redelivered.values())
        self.dead_letters = Counter(facts.dead_letters)
        self.anomalies = Counter(symbol(e.kind) for e in facts.of("AnomalyDetected") if e.correlation_id in ids)


@dataclass(frozen=True)
class Latencies:
    latency_ms: dict[str, float | None]
    throughput: float | None
    """Transactions per second, first request to last terminal event."""
    span_s: float | None
    answered: int


def latencies(facts: Facts, ids: Iterable[str], trigger: str, terminal: Sequence[str]) -> Latencies:
    """Request (``trigger``) to its first terminal event, over these transactions."""
    requests = facts.first(trigger, ids)
    ends = facts.by_correlation(*terminal)
    measured = []
    first_request = last_terminal = None
    for cid, request in requests.items():
        first_request = request.occurred_at if first_request is None else min(first_request, request.occurred_at)
        answers = ends.get(cid)
        if not answers:
            continue
        end = min(e.occurred_at for e in answers)
        measured.append(end - request.occurred_at)
        last_terminal = end if last_terminal is None else max(last_terminal, end)
    found = {name: percentile(measured, p) for name, p in (("p50", 50), ("p95", 95), ("p99", 99))}
    found["max"] = max(measured) if measured else None
    span = throughput = None
    if first_request is not None and last_terminal is not None and last_terminal > first_request:
        span = (last_terminal - first_request) / 1000
        throughput = len(measured) / span
    return Latencies(found, throughput, span, len(measured))


def render(report: Report) -> str:
    """The summary table, as printed at the end of the demo."""
    table = Table()
    report.body(table)
    table.row("Redelivered events (deduped)", f"{report.redelivered:>6}")
    table.row("Dead letters", f"{sum(report.dead_letters.values()):>6}" +
              (f"  ({', '.join(f'{k} {v}' for k, v in sorted(report.dead_letters.items()))})"
               if report.dead_letters else ""))
    if report.anomalies:
        table.row("Observer anomalies", f"{sum(report.anomalies.values()):>6}  (" +
                  ", ".join(f"{k} {v}" for k, v in sorted(report.anomalies.items(), key=lambda kv: -kv[1])) + ")")
    table.blank()
    if report.violations:
        table.row("Invariants", f"{len(report.violations)} VIOLATED")
        for violation in report.violations[:20]:
            table.lines.append(f"  - {violation}")
        if len(report.violations) > 20:
            table.lines.append(f"  ... and {len(report.violations) - 20} more")
    else:
        table.row("Invariants", "all hold")
    return "\n".join([RULE, *table.lines, RULE])
