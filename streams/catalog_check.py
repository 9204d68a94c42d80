"""The ownership test as code: a catalog plus the topic catalog plus the contracts, checked for the
rules that make orchestration and choreography live at the right levels. One line per violation."""

from __future__ import annotations

from typing import Iterable

from opengym_streams.catalog import Catalog
from opengym_streams.contracts import Contracts, load_contracts
from opengym_streams.topic import EXTERNAL, Topic

OBSERVER_EVENTS = ("AnomalyDetected", "ClockTicked", "DeadLetter")
"""All the observer may publish: its anomaly facts, its own clock ticks and its dead letters."""


def _short(avro_name: str) -> str:
    return avro_name.rsplit(".", 1)[-1]


def _system():
    from opengym_streams.system import load

    return load()


def check(catalog: Catalog, topics: Iterable[Topic] | None = None,
          contracts: Contracts | None = None, components: Iterable[str] | None = None,
          observer_outputs: Iterable[Topic] | None = None) -> list[str]:
    """Every violation, one human line each; empty when the catalog passes (topics and components:
    the configured system's unless given)."""
    topics = tuple(topics if topics is not None else _system().topics.all)
    components = set(components if components is not None else _system().names)
    contracts = contracts if contracts is not None else load_contracts()
    contract_names = {c.name for c in contracts}
    problems: list[str] = []
    carriers: dict[str, list[Topic]] = {}
    for topic in topics:
        if topic.kind in ("dlq",):
            continue
        for event in topic.events:
            if _short(event) != "ClockTicked":
                carriers.setdefault(_short(event), []).append(topic)

    def carrier(event: str, who: str) -> Topic | None:
        found = [t for t in carriers.get(event, []) if t.kind != "internal"]
        if len(found) != 1:
            problems.append(f"{who}: {event} is carried by {len(found)} contract topics "
                            f"({', '.join(t.name for t in found) or 'none'}); it needs exactly one")
            return None
        return found[0]

    # ---- exactly one owner per process ----------------------------------------------------------
    owners: dict[str, set[str]] = {}
    for bt in catalog.transactions:
        for proc in bt.processes():
            owner = getattr(proc, "owner", None)
            if owner is None:  # a choreography: nobody owns it, by definition
                continue
            owners.setdefault(proc.name, set()).add(owner)
            if owner not in components:
                problems.append(f"{bt.name} / {proc.name}: owner {owner!r} is not a component "
                                f"(components: {', '.join(sorted(components))})")
            if owner == catalog.observer:
                problems.append(f"{bt.name} / {proc.name}: owned by the observer {owner!r}, which must not "
                                "own any process")
    for name, names in owners.items():
        if len(names) > 1:
            problems.append(f"process {name}: has {len(names)} owners ({', '.join(sorted(names))}); "
                            "exactly one component owns a process")

    # ---- orchestrations: participants, requests, replies, terminal events -----------------------
    for bt in catalog.transactions:
        orch = bt.orchestration
        if orch is None:
            continue
        who = f"{bt.name} / {orch.name}"
        if not orch.terminal:
            problems.append(f"{who}: declares no terminal event")
        step_pairs = {s.invokes for s in orch.steps if s.invokes} | {s.compensated_by for s in orch.steps
                                                                      if s.compensated_by}
        for pair in orch.nested:
            pwho = f"{who} / {pair.name}"
            if pair.participant == orch.owner:
                problems.append(f"{pwho}: participant is the orchestration's own owner {orch.owner!r}; a "
                                "nested process belongs to another component")
            if pair.name not in step_pairs:
                problems.append(f"{pwho}: no step of {orch.name} invokes or compensates with it")
            if not pair.replies:
                problems.append(f"{pwho}: has no replies; a nested pair needs a closed set of replies")
            request_topic = carrier(pair.request, pwho)
            if request_topic is not None:
                if request_topic.owner != pair.participant:
                    problems.append(f"{pwho}: request {pair.request} travels on {request_topic.name}, owned by "
                                    f"{request_topic.owner!r}, not by the participant {pair.participant!r}")
                if orch.owner not in request_topic.writers:
                    problems.append(f"{pwho}: {orch.owner!r} may not write {request_topic.name}, where its "
                                    f"request {pair.request} travels")
            for reply in pair.replies:
                reply_topic = carrier(reply, pwho)
                if reply_topic is not None and reply_topic.writers != (pair.participant,):
                    problems.append(f"{pwho}: reply {reply} travels on {reply_topic.name}, written by "
                                    f"{', '.join(reply_topic.writers)}, not by the participant alone")
        for topic in topics:
            if topic.kind in ("requests", "commands") and orch.owner in topic.writers \
                    and topic.owner != orch.owner and topic.owner not in orch.participants:
                problems.append(f"{who}: {orch.owner!r} may write requests to {topic.name} (owned by "
                                f"{topic.owner!r}), which is not a declared participant of {orch.name}")
        carrier(orch.trigger, who)
        for event in orch.terminal:
            topic = carrier(event, who)
            if topic is not None and topic.owner != orch.owner:
                problems.append(f"{who}: terminal event {event} is published on {topic.name}, owned by "
                                f"{topic.owner!r}, not by the orchestration's owner {orch.owner!r}")

    # ---- downstream processes and choreographies: facts on their owner's topics ------------------
    for bt in catalog.transactions:
        terminals = {e for b in catalog.transactions if b.orchestration for e in b.orchestration.terminal}
        for proc in bt.downstream:
            who = f"{bt.name} / {proc.name}"
            if proc.trigger not in terminals:
                problems.append(f"{who}: trigger {proc.trigger} is not the terminal event of any orchestration")
            for event in {proc.start, proc.completion}:
                topic = carrier(event, who)
                if topic is not None and topic.owner != proc.owner:
                    problems.append(f"{who}: {event} travels on {topic.name}, owned by {topic.owner!r}, not by "
                                    f"the process owner {proc.owner!r}")
            if proc.complete_within_ms < proc.start_within_ms:
                problems.append(f"{who}: complete-within ({proc.complete_within_ms} ms) is shorter than "
                                f"start-within ({proc.start_within_ms} ms)")
        chain = bt.choreography
        if chain is not None:
            who = f"{bt.name} / {chain.name}"
            if len(chain.producers) < 2:
                problems.append(f"{who}: every fact comes from {chain.producers[0]!r}; one owner means it "
                                "should be an orchestration, not a choreography")
            for index, fact in enumerate(chain.facts):
                if fact.producer not in components:
                    problems.append(f"{who}: hop {index + 1} producer {fact.producer!r} is not a component")
                if (fact.stall_after_ms is None) != (index == len(chain.facts) - 1):
                    problems.append(f"{who}: hop {index + 1} must {'not ' if index == len(chain.facts) - 1 else ''}"
                                    "declare stall-after (every hop but the last outcome does)")
                for event in fact.events:
                    topic = carrier(event, who)
                    if topic is not None and topic.owner != fact.producer:
                        problems.append(f"{who}: {event} travels on {topic.name}, owned by {topic.owner!r}, "
                                        f"not by its producer {fact.producer!r}")

    # ---- every event has a contract -------------------------------------------------------------
    for event in sorted(catalog.events):
        if event not in contract_names:
            problems.append(f"event {event}: named by the catalog but has no contract under schemas/")
    for topic in topics:
        for event in topic.events:
            if _short(event) not in contract_names:
                problems.append(f"topic {topic.name}: carries {_short(event)}, which has no contract under schemas/")

    # ---- every topic one producing owner; every consumed topic a producer -----------------------
    for topic in topics:
        if topic.owner not in components:
            problems.append(f"topic {topic.name}: owner {topic.owner!r} is not a component")
        if topic.kind in ("events", "anomalies") and topic.writers != (topic.owner,):
            problems.append(f"topic {topic.name}: facts topic written by {', '.join(topic.writers)}; only its "
                            f"owner {topic.owner!r} may produce facts on it")
        unknown = [w for w in topic.writers if w not in components and w != EXTERNAL]
        if unknown:
            problems.append(f"topic {topic.name}: writer(s) {', '.join(unknown)} are not components")
    producers = catalog.producers()
    reported: set[tuple[str, str]] = set()
    for consumer, event in catalog.consumption():
        for topic in carriers.get(event, []):
            if topic.kind == "internal" or (topic.name, event) in reported:
                continue
            reported.add((topic.name, event))
            declared = producers.get(event, set())
            if not declared and EXTERNAL not in topic.writers:
                problems.append(f"topic {topic.name}: {consumer!r} consumes {event} from it, but no process "
                                "produces it and no external producer may write it")
            for producer in sorted(declared - set(topic.writers)):
                problems.append(f"topic {topic.name}: {producer!r} produces {event} (says the catalog) but is "
                                f"not a writer of it (writers: {', '.join(topic.writers)})")

    # ---- the observer publishes nothing but its own facts -----------------------------------------
    observer = catalog.observer
    for topic in topics:
        if observer in topic.writers:
            foreign = [_short(e) for e in topic.events if _short(e) not in OBSERVER_EVENTS]
            if topic.owner != observer or foreign:
                problems.append(f"observer {observer!r} may write {topic.name} (owner {topic.owner!r}"
                                f"{', events ' + ', '.join(foreign) if foreign else ''}); it publishes only "
                                f"{', '.join(OBSERVER_EVENTS)} on its own topics")
    for topic in observer_outputs or ():
        if observer not in topic.writers:
            problems.append(f"observer {observer!r} publishes to {topic.name}, which it is not a declared "
                            f"writer of (writers: {', '.join(topic.writers)})")
    return problems


def check_subscriptions(catalog: Catalog, subscriptions: dict[str, set[str]],
                        topics: Iterable[Topic] | None = None) -> list[str]:
    """The code against the catalog: each component's agents read the topics the catalog says it
    reacts to, and nothing the topic catalog does not declare; every topic has a writer and a reader.
    ``subscriptions``: component -> topic names."""
    topics = tuple(topics if topics is not None else _system().topics.all)
    known = {t.name: t for t in topics}
    problems: list[str] = []
    for component, names in sorted(subscriptions.items()):
        for name in sorted(names):
            if name not in known:
                problems.append(f"{component}: its app reads {name}, which the topic catalog does not declare")
    seen: set[tuple[str, str]] = set()
    for consumer, event in catalog.consumption(include_self=False):
        if (consumer, event) in seen or consumer not in subscriptions:
            continue
        seen.add((consumer, event))
        carriers = [t.name for t in topics if t.kind != "internal" and any(_short(e) == event for e in t.events)]
        if carriers and not set(carriers) & subscriptions[consumer]:
            problems.append(f"{consumer}: the catalog says it reacts to {event}, but its app reads no topic that "
                            f"carries it ({', '.join(carriers)})")
    readers = {name for names in subscriptions.values() for name in names}
    producers = catalog.producers()
    for topic in topics:
        if topic.kind in ("dlq", "redrives"):
            continue  # read by operators (opengym consume, the dead-letter tools), written by the runtime or them
        produced = any(producers.get(_short(e)) for e in topic.events) or EXTERNAL in topic.writers \
            or topic.kind in ("clock", "anomalies") or (topic.kind == "internal" and topic.name in readers)
        if not produced:
            problems.append(f"topic {topic.name}: nothing the catalog declares is published on it and no external "
                            "producer may write it")
        if topic.name not in readers and topic.kind != "anomalies":
            problems.append(f"topic {topic.name}: no component reads it")
    return problems


def load_subscriptions(system=None) -> dict[str, set[str]]:
    """component -> the contract topic names its agents read, from each component's own declaration."""
    import importlib

    system = system or _system()
    found: dict[str, set[str]] = {}
    for spec in system.components:
        found[spec.name] = set(importlib.import_module(spec.module).build().reads())
    return found
