"""The pieces a system's invariants are made of: each rule a function returning its violations, one line
each, naming the transaction and what was expected and seen (an empty list: the rule holds).

A system's demo states its own invariants with these (OpenGym's ``opengym.demo.invariants``); the rules
every system shares are here: every request ends in exactly one terminal event, no event id published
twice with different contents, and what a catalog's downstream processes owe each terminal event.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from opengym_streams.catalog import Catalog
from opengym_streams.demo.facts import Facts
from opengym_streams.event import Event


def exactly_one(found: Mapping[str, list[Event]], ids: Iterable[str], noun: str, what: str,
                plural: str | None = None) -> list[str]:
    """Each id has exactly one of the events in ``found`` (id -> events): ``"<noun> <id>: no <what>
    (expected exactly one)"`` or ``"<noun> <id>: 2 <plural> (A, B), expected exactly one"``."""
    plural = plural or f"{what}s"
    out = []
    for key in sorted(ids):
        events = found.get(key, [])
        if not events:
            out.append(f"{noun} {key}: no {what} (expected exactly one)")
        elif len(events) > 1:
            kinds = ", ".join(sorted(e.type_name for e in events))
            out.append(f"{noun} {key}: {len(events)} {plural} ({kinds}), expected exactly one")
    return out


def at_most_one(found: Mapping[str, list[Event]], ids: Iterable[str], noun: str, plural: str) -> list[str]:
    out = []
    for key in sorted(ids):
        events = found.get(key, [])
        if len(events) > 1:
            kinds = ", ".join(sorted(e.type_name for e in events))
            out.append(f"{noun} {key}: {len(events)} {plural} ({kinds}), expected at most one")
    return out


def none_of(found: Mapping[str, list[Event]], ids: Iterable[str], noun: str, why: str, plural: str) -> list[str]:
    """No id has any of these events (``why``: what the id is, e.g. "not confirmed")."""
    return [f"{noun} {key} ({why}): {len(found[key])} {plural}, expected none"
            for key in sorted(ids) if found.get(key)]


def conflicting_copies(facts: Facts, ids: Iterable[str] | None = None, field: str = "correlation_id") -> list[str]:
    """Two copies of one event id with different contents (among the events of these transactions)."""
    wanted = set(ids) if ids is not None else None
    out = []
    for first, _ in facts.conflicts:
        key = getattr(first, field, None)
        if wanted is None or key is None or key in wanted:
            out.append(f"event {first.event_id} ({first.type_name}, {first.correlation_id}) published twice "
                       f"with different contents")
    return out


def downstream_owed(facts: Facts, catalog: Catalog, ids: Iterable[str], noun: str,
                    expected_owners: Iterable[str] | None = None) -> list[str]:
    """What the catalog's downstream processes owe: for each process, exactly one start fact per
    transaction whose trigger (a terminal event) was published, and none for the others. A process whose
    owner is not in ``expected_owners`` (a paused worker) may have started at most once."""
    ids = sorted(ids)
    owners = None if expected_owners is None else set(expected_owners)
    out = []
    for bt in catalog.transactions:
        for proc in bt.downstream:
            per_id = facts.by_correlation(proc.start)
            owed = set(facts.by_correlation(proc.trigger))
            expected = owners is None or proc.owner in owners
            for key in ids:
                n = len(per_id.get(key, ()))
                if key in owed:
                    if expected and n != 1:
                        out.append(f"{noun} {key} ({proc.trigger}): {n} {proc.start}, expected exactly one")
                    elif not expected and n > 1:
                        out.append(f"{noun} {key} ({proc.trigger}): {n} {proc.start}, expected at most one")
                elif n:
                    out.append(f"{noun} {key} (no {proc.trigger}): {n} {proc.start}, expected none")
    return out
