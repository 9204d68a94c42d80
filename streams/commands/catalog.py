"""opengym catalog check | docs: the ownership test, and the catalog rendered as Markdown + Mermaid."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("catalog", help="the process catalog: check it, render it")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="the ownership test: one line per violation, non-zero exit on any",
        description="Checks the system's process catalog against the topic catalog and the "
                    "contracts: exactly one owner per process, orchestrations request only from declared "
                    "participants, every event has a contract, every topic one producing owner, every "
                    "consumed topic a producer, the observer publishes only its own facts, and each "
                    "component's Faust app reads the topics the catalog says it reacts to.")
    check.set_defaults(handler=_check)
    docs = actions.add_parser("docs", help="write docs/catalog.md (Markdown with Mermaid diagrams)")
    docs.add_argument("--check", action="store_true", help="do not write; exit 1 when docs/catalog.md is stale")
    docs.set_defaults(handler=_docs)


def _check(args) -> int:
    from streams.catalog_check import check, check_subscriptions, load_subscriptions
    from streams.catalog_docs import default_catalog
    from streams.observe import outputs
    from streams.system import load

    system = load()
    catalog = default_catalog()
    problems = check(catalog, system.topics.all, components=system.names, observer_outputs=outputs(system))
    problems += check_subscriptions(catalog, load_subscriptions(system), system.topics.all)
    for problem in problems:
        print(problem)
    processes = sum(1 for _ in catalog.process_names())
    if problems:
        print(f"{len(problems)} violation(s) in {processes} processes", file=sys.stderr)
        return 1
    print(f"catalog OK: {len(catalog.transactions)} business transactions, {processes} processes, "
          f"{len(catalog.events)} events")
    return 0


def _docs(args) -> int:
    from streams.catalog_docs import DOCS_PATH, default_catalog, render, write

    if args.check:
        current = DOCS_PATH.read_text() if DOCS_PATH.exists() else ""
        if current != render(default_catalog()):
            print(f"{DOCS_PATH} is stale: run `opengym catalog docs`", file=sys.stderr)
            return 1
        print(f"{DOCS_PATH} is up to date")
        return 0
    print(f"wrote {write()}")
    return 0
