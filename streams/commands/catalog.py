"""opengym catalog check | docs | asyncapi: the ownership test, the catalog rendered as Markdown + Mermaid,
and the catalogs as an AsyncAPI 3 document."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator



def __getattr__(name: str):
    if name == "ASYNCAPI_PATH":  # the configured system's document, read when asked
        from opengym_streams.system import load

        return load().asyncapi_path()
    raise AttributeError(name)


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
    docs = actions.add_parser("docs", help="write the system's catalog.md (Markdown with Mermaid diagrams) in its "
                                           "docs directory (OpenGym: docs/catalog.md)")
    docs.add_argument("--check", action="store_true", help="do not write; exit 1 when the file is stale")
    docs.set_defaults(handler=_docs)
    asyncapi = actions.add_parser(
        "asyncapi", help="write the system's asyncapi/<name>.json in its docs directory (the catalogs as an AsyncAPI 3 "
                         "document; OpenGym: docs/asyncapi/opengym.json)",
        description="Channels are the topic catalog's topics, messages the Avro contracts (by reference), "
                    "operations who sends and who reads each topic (the apps' real subscriptions), and each "
                    "nested request/reply pair an operation with its reply.")
    asyncapi.add_argument("--check", action="store_true", help="do not write; exit 1 when the document is stale")
    asyncapi.set_defaults(handler=_asyncapi)


def _check(args) -> int:
    from opengym_streams.catalog_check import check, check_subscriptions, load_subscriptions
    from opengym_streams.catalog_docs import default_catalog
    from opengym_streams.observe import outputs
    from opengym_streams.system import load

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
    from opengym_streams.catalog_docs import docs_path, render_system, write
    from opengym_streams.system import load

    system = load()
    try:
        path = docs_path(system)
    except LookupError as exc:
        print(f"opengym catalog docs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != render_system(system):
            print(f"{path} is stale: run `opengym catalog docs`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    print(f"wrote {write(system=system)}")
    return 0


@contextmanager
def _default_stack() -> Iterator[None]:
    """Without the broker and registry overrides, so the document names the documented defaults."""
    names = ("OPENGYM_BOOTSTRAP", "OPENGYM_SCHEMA_REGISTRY")
    saved = {k: os.environ.pop(k) for k in names if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def asyncapi_document(system=None) -> dict:
    """The configured system's (or ``system``'s) catalogs handed to the generic generator."""
    from importlib.metadata import version

    from opengym_streams.asyncapi import Info, document, kafka_server
    from opengym_streams.catalog_check import load_subscriptions
    from opengym_streams.catalog_docs import default_catalog
    from opengym_streams.contracts import load_contracts
    from opengym_streams.settings import REPO_ROOT, get_settings
    from opengym_streams.system import load

    system = system or load()
    with _default_stack():
        settings = get_settings()
    server = kafka_server(settings.bootstrap, settings.registry_url, "apicurio",
                          description="The local stack `opengym stack up` starts (Kafka in KRaft mode, Apicurio "
                                      "Registry's Confluent-compatible API); OPENGYM_BOOTSTRAP and "
                                      "OPENGYM_SCHEMA_REGISTRY point the components elsewhere.")
    path = system.asyncapi_path()
    catalog_page = path.parent.parent / "catalog.md"
    try:
        shown = catalog_page.relative_to(REPO_ROOT)
    except ValueError:
        shown = catalog_page.name
    info = Info(
        f"{system.label} streams", version("opengym-streams"),
        "Generated by `opengym catalog asyncapi` from the system's topic catalog, process catalog, contracts and "
        "components' declarations; do not edit by hand (a unit test fails when it is stale). Topic names are "
        "the contract names: OPENGYM_TOPIC_PREFIX, when set, is prepended at run time. Operations are named "
        "`<component>.<send|receive>.<topic or nested process>`; `external` stands for producers outside "
        f"{system.label}. The process catalog is rendered in {shown}.")
    return document(system.topics.all, default_catalog(system), load_contracts(system), load_subscriptions(system),
                    info, path.parent, servers={"local": server}, external=system.topics.external)


def _asyncapi(args) -> int:
    from opengym_streams.asyncapi import render, write
    from opengym_streams.system import load

    system = load()
    try:
        path = system.asyncapi_path()
    except LookupError as exc:
        print(f"opengym catalog asyncapi: {exc}", file=sys.stderr)
        return 2
    doc = asyncapi_document(system)
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != render(doc):
            print(f"{path} is stale: run `opengym catalog asyncapi`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    print(f"wrote {write(doc, path)}")
    return 0
