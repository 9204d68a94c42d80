"""The process catalog as Markdown with Mermaid diagrams: each business transaction's three-level tree
(orchestration with its nested pairs, terminal events, downstream processes) and each choreography."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from opengym_streams.catalog import BusinessTransaction, Catalog

_OVERRIDE = re.compile(r"^OPENGYM_.*_MS$")


def docs_path(system=None) -> Path:
    """The system's docs/catalog.md (in the docs directory its declaration names)."""
    from opengym_streams.system import load

    return (system or load()).docs_dir() / "catalog.md"


def __getattr__(name: str):
    if name == "DOCS_PATH":  # the configured system's, read when asked
        return docs_path()
    raise AttributeError(name)


@contextmanager
def default_durations() -> Iterator[None]:
    """Without the ``OPENGYM_*_MS`` overrides, so the docs show the catalog's defaults."""
    saved = {k: v for k, v in os.environ.items() if _OVERRIDE.match(k)}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


def default_catalog(system=None) -> Catalog:
    """The configured system's (or ``system``'s) catalog with every duration at its default."""
    from opengym_streams.system import load

    with default_durations():
        return (system or load()).processes()


def duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def _text(value: str) -> str:
    """A name as literal label text: Mermaid's entity codes for the characters its syntax, its Markdown
    strings or the HTML label would take for their own (``#`` first: the codes start with it)."""
    for char, code in (("#", "#35;"), ("&", "#38;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                       ("`", "#96;")):
        value = value.replace(char, code)
    return value


class _Diagram:
    """One flowchart. Node ids are the role and a running number (``n1_transaction``), never derived
    from a name, so two parts of a diagram cannot collide however they are named (a choreography
    named like its business transaction once merged the two nodes into a self-loop)."""

    def __init__(self) -> None:
        self.lines = ["```mermaid", "flowchart TD"]
        self._count = 0

    def node(self, role: str, shape: str, *label: str) -> str:
        self._count += 1
        node_id = f"n{self._count}_{role}"
        opening, closing = shape.split("|")
        self.lines.append(f'  {node_id}{opening}"{"<br/>".join(label)}"{closing}')
        return node_id

    def edge(self, source: str, target: str, label: str | None = None, dotted: bool = False) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{label}"|' if label else ""
        self.lines.append(f"  {source} {arrow}{text} {target}")

    def end(self) -> list[str]:
        return self.lines + ["```"]


def _tree(bt: BusinessTransaction) -> list[str]:
    diagram = _Diagram()
    root = diagram.node("transaction", "([|])", _text(bt.name))
    orch = bt.orchestration
    if orch is not None:
        o = diagram.node("orchestration", "[|]", f"ORCHESTRATION {_text(orch.name)}", f"owner: {_text(orch.owner)}",
                         f"starts on {_text(orch.trigger)}")
        diagram.edge(root, o)
        for pair in orch.nested:
            n = diagram.node("nested", "[|]", f"{'COMPENSATION' if pair.compensation else 'NESTED'} {_text(pair.name)}",
                             f"owner: {_text(pair.participant)}",
                             f"deadline {duration(pair.deadline_ms)} from {_text(pair.deadline_from)}")
            diagram.edge(o, n, _text(pair.request))
            diagram.edge(n, o, " / ".join(_text(r) for r in pair.replies), dotted=True)
        t = diagram.node("terminal", "{{|}}", "TERMINAL", " | ".join(_text(e) for e in orch.terminal))
        diagram.edge(o, t)
        for proc in bt.downstream:
            label = [f"DOWNSTREAM {_text(proc.name)}", f"owner: {_text(proc.owner)}",
                     f"starts with {_text(proc.start)} within {duration(proc.start_within_ms)}"]
            if not proc.single_fact:
                label.append(f"completes with {_text(proc.completion)} within {duration(proc.complete_within_ms)}")
            d = diagram.node("downstream", "[|]", *label)
            diagram.edge(t, d, _text(proc.trigger))
    chain = bt.choreography
    if chain is not None:
        c = diagram.node("choreography", "[|]", f"CHOREOGRAPHY {_text(chain.name)}", "nobody owns it")
        diagram.edge(root, c)
        previous, stall = c, None
        for fact in chain.facts:
            hop = diagram.node("hop", "[|]", _text(fact.label), f"by {_text(fact.producer)}")
            diagram.edge(previous, hop, f"within {duration(stall)}" if stall else None)
            previous, stall = hop, fact.stall_after_ms
    return diagram.end()


def _step_row(step) -> str:
    replies = ", ".join(f"`{r.event}` ({'success' if r.succeeds else 'failure'})" for r in step.replies)
    deadline = f"{duration(step.deadline_ms)} from the {step.deadline_from} -> `{getattr(step.on_timeout, 'value', step.on_timeout)}`"
    late = "is a timeout" if step.late_reply == "time_out" else "counts"
    comp = step.compensation
    undo = f"`{comp.request}`" + (f" ({comp.process})" if comp.process else "") if comp is not None else "-"
    who = step.participant + (f" ({step.process})" if step.process else " (inside the owner)")
    return (f"| {step.name} | {who} | `{step.request}` | {replies} | {step.waits_in} | {deadline} | {late} | "
            f"{undo} |")


def render(catalog: Catalog, asyncapi: str | None = None) -> str:
    """``asyncapi``: the AsyncAPI document's path relative to this page (default: the configured system's)."""
    if asyncapi is None:
        from opengym_streams.system import load

        asyncapi = f"asyncapi/{load().name}.json"
    out = ["# The process catalog", "",
           "Generated by `opengym catalog docs` from the system's declaration; do not edit by hand (a unit test "
           "fails when this file is stale). Durations are the defaults; each can be overridden by "
           "environment (`OPENGYM_<PROCESS>_<WHAT>_MS`, see docs/settings.md).", "",
           f"Every process below is watched by the observer, `{catalog.observer}`, which publishes only "
           "`AnomalyDetected` and never drives a process.", "",
           "The same catalogs, with the topics, the contracts and who sends and reads each, are an AsyncAPI 3 "
           f"document: [{asyncapi}]({asyncapi}) (`opengym catalog asyncapi`).", ""]
    for bt in catalog.transactions:
        out += [f"## Business transaction: {bt.name}", ""]
        if bt.doc:
            out += [bt.doc, ""]
        out += _tree(bt) + [""]
        orch = bt.orchestration
        if orch is not None:
            out += [f"### Orchestration {orch.name} (owner: {orch.owner})", ""]
            if orch.doc:
                out += [orch.doc, ""]
            out += [f"Starts on `{orch.trigger}`; ends with exactly one terminal event: "
                    + " | ".join(f"`{e}`" for e in orch.terminal) + ".", "",
                    "The step table (the one statement of the orchestration: the owner runs it, the observer "
                    "and this page read it):", "",
                    "| Step | Participant | Request | Replies (success / failure) | Waits in | Deadline | "
                    "A reply after it | Compensation |", "|---|---|---|---|---|---|---|---|"]
            out += [_step_row(s) for s in orch.steps]
            out += ["", "| Step | What it does |", "|---|---|"]
            out += [f"| {s.name} | {s.doc} |" for s in orch.steps]
            out += ["", "| Nested pair | Owner (participant) | Request | Closed set of replies | Deadline |",
                    "|---|---|---|---|---|"]
            out += [f"| {p.name}{' (compensation)' if p.compensation else ''} | {p.participant} | `{p.request}` | "
                    + ", ".join(f"`{r}`" for r in p.replies)
                    + f" | {duration(p.deadline_ms)} from the {p.deadline_from} |" for p in orch.nested]
            out.append("")
        if bt.downstream:
            out += ["### Downstream processes", "",
                    "Each is owned by its reacting component; the orchestrator does not wait for it or know it.", "",
                    "| Process | Owner | Trigger | Start | Start within | Completion | Complete within |",
                    "|---|---|---|---|---|---|---|"]
            out += [f"| {d.name} | {d.owner} | `{d.trigger}` | `{d.start}` | {duration(d.start_within_ms)} | "
                    f"`{d.completion}` | {duration(d.complete_within_ms)} |" for d in bt.downstream]
            out.append("")
        chain = bt.choreography
        if chain is not None:
            out += [f"### Choreography {chain.name} (no owner)", ""]
            if chain.doc:
                out += [chain.doc, ""]
            out += ["| Hop | Fact | Producer | Next hop expected within |", "|---|---|---|---|"]
            out += [f"| {i + 1} | `{f.label}` | {f.producer} | {duration(f.stall_after_ms)} |"
                    for i, f in enumerate(chain.facts)]
            out += ["", "Outcomes: " + " | ".join(f"`{e}`" for e in chain.outcomes) + ".", ""]
    out += ["## What the observer reports", "",
            "| Anomaly | When |", "|---|---|",
            "| NESTED_TIMEOUT | a nested request has no reply from its closed set by its deadline (also when the "
            "reply comes late) |",
            "| LATE_REPLY | a reply arrives after its pair's deadline |",
            "| REPLY_WITHOUT_REQUEST | a reply names a request the observer never sees (after a grace) |",
            "| DOWNSTREAM_NOT_STARTED | a terminal event's downstream process shows no start fact in time |",
            "| DOWNSTREAM_NOT_COMPLETED | a started downstream process shows no completion fact in time |",
            "| CHAIN_STALLED | a choreography's next fact does not follow within the hop's stall-after |", ""]
    return "\n".join(out)


def render_system(system) -> str:
    """The page of one system: its catalog at default durations, linking its AsyncAPI document."""
    return render(default_catalog(system), f"asyncapi/{system.name}.json")


def write(path: Path | None = None, catalog: Catalog | None = None, system=None) -> Path:
    from opengym_streams.system import load

    system = system or load()
    path = path or docs_path(system)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(catalog, f"asyncapi/{system.name}.json") if catalog is not None else render_system(system))
    return path
