"""Every Mermaid diagram of the docs, and every one catalog_docs generates, read by the real Mermaid
library (tools/node/mermaid-parse.mjs): it must parse, and each catalog tree must have the shape the
catalog says, checked on the graph Mermaid understood, not on the source text."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from opengym_streams.catalog import (BusinessTransaction, Catalog, Choreography, Compensation, DownstreamProcess, Fact,
                             Orchestration, Step, Terminal, fails, succeeds)
from opengym_streams.catalog_docs import default_catalog, duration, render
from opengym_streams.settings import REPO_ROOT
from tests.node_tools import run_node

SKIPPED_DIRS = {".git", ".venv", "node_modules", "build", "dist", ".pytest_cache", "__pycache__"}

ODD = '`Same "name" #1 & <b>end</b> | o --> x`'
"""A name for every part of one business transaction, with what Mermaid's syntax or HTML would take for
their own: quotes, an entity-like '#1', '&', a tag, the keyword ``end``, a pipe, an arrow, backticks."""


def markdown_diagrams() -> dict[str, str]:
    """'path:line' -> source of every ```mermaid block in the repo's Markdown (docs/ and beside it)."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(".md"):
                path = Path(root) / name
                found.update(_blocks(path.read_text(), str(path.relative_to(REPO_ROOT))))
    return found


def _blocks(text: str, where: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```mermaid":
            start = index + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            blocks[f"{where}:{start}"] = "\n".join(lines[start:end]) + "\n"
            index = end
        index += 1
    return blocks


def odd_catalog() -> Catalog:
    undo = Compensation(ODD, build=None, process=ODD, replies=(ODD,), deadline_ms=2000)
    step = Step(ODD, participant=ODD, request=ODD, ask=None, replies=(succeeds(ODD), fails(ODD + " again", None)),
                waits_in=ODD, deadline_ms=1500, on_timeout=ODD, deadline_from="request", compensation=undo, process=ODD)
    orch = Orchestration(ODD, owner=ODD, trigger=ODD, start=None, steps=(step,),
                         succeeded=Terminal(ODD, None, ODD), failed=Terminal(ODD, None, ODD))
    down = tuple(DownstreamProcess(ODD, owner=ODD, trigger=ODD, start=ODD, completion=completion,
                                   start_within_ms=1000, complete_within_ms=60_000) for completion in (ODD, "Done"))
    chain = Choreography(ODD, facts=(Fact((ODD,), ODD, stall_after_ms=3000, where=(("odd", True),)),
                                     Fact((ODD, ODD), ODD, stall_after_ms=120_000), Fact((ODD,), ODD)))
    return Catalog(transactions=(BusinessTransaction(ODD, orchestration=orch, downstream=down, choreography=chain),))


def by_transaction(catalog: Catalog, prefix: str) -> list[tuple[str, BusinessTransaction]]:
    names = list(_blocks(render(catalog), prefix))
    assert len(names) == len(catalog.transactions), "one diagram per business transaction"
    return list(zip(names, catalog.transactions))


MALFORMED = "flowchart TD\n  a[\"unclosed\n  a -->\n"


def order_catalog() -> Catalog:
    """The second system's catalog (orchestration, downstream and choreography in one transaction)."""
    from order_fulfilment.agents.system import SYSTEM

    return default_catalog(SYSTEM)


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict]:
    """Every diagram of this module, parsed in one Node run."""
    sources = {**markdown_diagrams(), **_blocks(render(default_catalog()), "generated"),
               **_blocks(render(order_catalog()), "order"), **_blocks(render(odd_catalog()), "odd"),
               "malformed": MALFORMED}
    results = run_node("mermaid-parse.mjs", stdin=[{"name": k, "source": v} for k, v in sources.items()])
    return {r["name"]: r for r in results}


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def expected_edges(bt: BusinessTransaction) -> Counter:
    """(source's first label line, target's first label line, edge label, stroke), as the catalog says."""
    edges: Counter = Counter()
    orch = bt.orchestration
    if orch is not None:
        o = f"ORCHESTRATION {orch.name}"
        edges[(bt.name, o, "", "normal")] += 1
        for pair in orch.nested:
            n = f"{'COMPENSATION' if pair.compensation else 'NESTED'} {pair.name}"
            edges[(o, n, pair.request, "normal")] += 1
            edges[(n, o, " / ".join(pair.replies), "dotted")] += 1
        edges[(o, "TERMINAL", "", "normal")] += 1
        for proc in bt.downstream:
            edges[("TERMINAL", f"DOWNSTREAM {proc.name}", proc.trigger, "normal")] += 1
    chain = bt.choreography
    if chain is not None:
        previous, stall = f"CHOREOGRAPHY {chain.name}", None
        edges[(bt.name, previous, "", "normal")] += 1
        for fact in chain.facts:
            edges[(previous, fact.label, f"within {duration(stall)}" if stall else "", "normal")] += 1
            previous, stall = fact.label, fact.stall_after_ms
    return edges


def node_count(bt: BusinessTransaction) -> int:
    orch, chain = bt.orchestration, bt.choreography
    return (1 + (2 + len(orch.nested) + len(bt.downstream) if orch else 0)
            + (1 + len(chain.facts) if chain else 0))


def assert_one_tree(result: dict, bt: BusinessTransaction) -> None:
    assert result["ok"], f"{result['name']}: Mermaid cannot parse it: {result['error']}"
    assert result["type"] == "flowchart-v2"
    nodes = {n["id"]: n for n in result["nodes"]}
    edges = result["edges"]
    assert len(nodes) == node_count(bt), (
        f"{result['name']}: {len(nodes)} nodes, the catalog has {node_count(bt)} parts (two parts share an id?)")
    loops = [e for e in edges if e["source"] == e["target"]]
    assert not loops, f"{result['name']}: self-loop(s) {loops}"
    targets = {e["target"] for e in edges}
    roots = [n for n in nodes.values() if n["id"] not in targets]
    assert [(n["text"], n["shape"]) for n in roots] == [(bt.name, "stadium")], (
        f"{result['name']}: the one root must be the business transaction, found {roots}")
    reached, frontier = {roots[0]["id"]}, [roots[0]["id"]]
    while frontier:
        here = frontier.pop()
        for e in edges:
            if e["source"] == here and e["target"] not in reached:
                reached.add(e["target"])
                frontier.append(e["target"])
    assert reached == set(nodes), f"{result['name']}: not reachable from the root: {set(nodes) - reached}"
    seen = Counter((first_line(nodes[e["source"]]["text"]), first_line(nodes[e["target"]]["text"]), e["text"],
                    e["stroke"]) for e in edges)
    assert seen == expected_edges(bt), f"{result['name']}: edges differ from the catalog"


def test_every_mermaid_diagram_in_the_docs_parses(parsed):
    in_docs = markdown_diagrams()
    assert any(name.startswith("docs/catalog.md:") for name in in_docs), "docs/catalog.md has no diagram"
    broken = {name: parsed[name]["error"] for name in in_docs if not parsed[name]["ok"]}
    assert not broken, f"Mermaid cannot parse: {broken}"


def test_each_catalog_diagram_is_one_tree_rooted_at_its_business_transaction(parsed):
    for name, bt in by_transaction(default_catalog(), "generated"):
        assert_one_tree(parsed[name], bt)


def test_the_second_systems_diagrams_are_one_tree_each_with_every_level(parsed):
    for name, bt in by_transaction(order_catalog(), "order"):
        assert_one_tree(parsed[name], bt)
    in_docs = markdown_diagrams()
    assert any(name.startswith("examples/order_fulfilment/docs/catalog.md:") for name in in_docs)


def test_the_settlement_diagram_keeps_its_root_apart_from_its_like_named_choreography(parsed):
    (_, booking), (name, settlement) = by_transaction(default_catalog(), "generated")
    assert settlement.choreography is not None
    nodes = {n["id"]: n["text"] for n in parsed[name]["nodes"]}
    root = next(i for i, text in nodes.items() if text == settlement.name)
    chain = next(i for i, text in nodes.items() if text.startswith(f"CHOREOGRAPHY {settlement.choreography.name}\n"))
    assert root != chain
    assert {"source": root, "target": chain, "text": "", "stroke": "normal"} in parsed[name]["edges"]


def test_parts_named_alike_with_mermaid_syntax_in_their_names_still_draw_one_tree(parsed):
    ((name, bt),) = by_transaction(odd_catalog(), "odd")
    assert_one_tree(parsed[name], bt)
    texts = [n["text"] for n in parsed[name]["nodes"]]
    assert texts[0] == ODD, "the label must read as the name, entity codes decoded"
    assert f"ORCHESTRATION {ODD}\nowner: {ODD}\nstarts on {ODD}" in texts


def test_the_parser_reports_a_malformed_diagram(parsed):
    assert not parsed["malformed"]["ok"]
    assert "Parse error" in parsed["malformed"]["error"]
