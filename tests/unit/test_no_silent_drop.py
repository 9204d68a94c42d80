"""No silent drop (issue 15 item 5): every branch of every declared handler of every component of the
system (the observer included) either acts (emits events or changes the state) or says why it does not
(``Ignored`` with a named reason, which the runtime counts as ``opengym_ignored_total`` or, for a
conflict, dead-letters). A branch returning "nothing" (no events, the same state) is a silent drop.

The walk: the demo's workload (schedules, grants of every kind, bookings into full classes, exhausted
packs, partner visits, check-ins of the right and the wrong member) and the observer scenarios' facts are
fed to every agent that handles their type, in every state its key has been seen in so far; what the
handlers emit is fed on; then clock ticks at several times for every state kept. Entitlement's delay and
the payment gateway's failures are switched on so their branches run. Every call is checked, and a line
trace proves that every ``return`` of every handler (and of the step functions they return through) ran.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import sys
import textwrap
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from opengym_streams.component import CLOCK_TICKED, apply, unpack
from opengym_streams.event import Event
from opengym_streams.models import ClockTicked

MAX_STATES_PER_KEY = 6
OBSERVER_STATES_PER_KEY = 2
"""The observer's states grow with every fact of a transaction (its engine has tests of its own); two
per key reach all of its handlers' branches at a fraction of the cost."""
TICK_OFFSETS_MS = (0, 10_000, 40 * 86_400_000)
"""Ticks at, and well past, the latest time each state has seen: before, at and after every deadline,
and past the observer's idle and retention limits."""


@pytest.fixture(scope="module")
def built():
    patch = pytest.MonkeyPatch()
    patch.setenv("OPENGYM_ENTITLEMENT_DELAY_SHARE", "0.5")
    patch.setenv("OPENGYM_ENTITLEMENT_DELAY_MS", "120000")  # past the booking deadline: late replies
    patch.setenv("OPENGYM_PAYMENT_FAILURE_RATE", "0.5")
    patch.setenv("OPENGYM_OBSERVER_WATERMARK", "0")
    try:
        from opengym.agents.system import SYSTEM

        yield {spec.name: importlib.import_module(spec.module).build() for spec in SYSTEM.components}
    finally:
        patch.undo()


def _function(handler):
    while isinstance(handler, functools.partial):
        handler = handler.func
    return getattr(handler, "__func__", handler)


def _returns(fn) -> set[tuple[str, int]]:
    """(file, line) of every return statement in ``fn`` (nested functions included)."""
    lines, first = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    path = inspect.getsourcefile(fn)
    return {(path, first + node.lineno - 1) for node in ast.walk(tree) if isinstance(node, ast.Return)}


def _seed_events() -> list[Event]:
    from opengym.demo import scenarios
    from opengym.demo.workload import (WorkloadConfig, booking_event, check_in_event, grant_events, plan_workload,
                                       schedule_events)

    plan = plan_workload(WorkloadConfig(bookings=12, seed=3, gyms=2, classes_per_gym=3), run_id="walk",
                         now=1_700_000_000_000)
    events: list[Event] = [*schedule_events(plan), *grant_events(plan)]
    for booking in plan.bookings:
        events.append(booking_event(plan, booking, occurred_at=1_700_000_000_000))
        events.append(check_in_event(plan, booking))
    # A check-in by somebody else than the member booked.
    events += [check_in_event(plan, b).model_copy(update={"member_id": "m-somebody-else",
                                                           "event_id": f"{b.booking_id}-other"})
               for b in plan.bookings[:3]]
    for n, scenario in enumerate(scenarios.SCENARIOS):
        events += scenarios.booking(f"walk-{n}", 1_700_000_000_000 + n, scenario)
    return events


class Walk:
    """Feeds events to every agent that handles them, in every state seen for their key."""

    def __init__(self, built):
        self.built = built
        self.handlers: dict[str, list[tuple[str, object, object, str]]] = defaultdict(list)
        """type -> [(component, agent, handler, key field)]"""
        for name, component in built.items():
            for agent in component.agents:
                for type_name, handler in agent.handlers.items():
                    topic = next(t for t in agent.reads if type_name in t.short_names)
                    self.handlers[type_name].append((name, agent, handler, topic.key))
        self.states: dict[tuple[str, str], dict[str, dict[str, object]]] = defaultdict(lambda: defaultdict(dict))
        self.latest: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self.seen_calls: set = set()
        self.silent: list[str] = []
        self.verdicts: Counter = Counter()
        self.emitted: list[Event] = []
        self.calls = 0

    def key_of(self, event: Event, field: str) -> str:
        return str(getattr(event, field, None) or event.correlation_id)

    def feed(self, events: list[Event], budget: int = 200_000) -> None:
        queue = list(events)
        while queue and self.calls < budget:
            event = queue.pop(0)
            for component, agent, handler, field in self.handlers.get(event.type_name, ()):
                if event.type_name == CLOCK_TICKED:
                    continue
                key = self.key_of(event, field)
                queue += self.call(component, agent, handler, key, event, event.occurred_at)

    def tick_everything(self) -> list[Event]:
        out = []
        for component, agent, handler, _ in self.handlers.get(CLOCK_TICKED, ()):
            for key, states in list(self.states[(component, agent.name)].items()):
                base = self.latest[(component, agent.name)].get(key, 0)
                for offset in TICK_OFFSETS_MS:
                    now = base + offset
                    tick = ClockTicked.new(correlation_id=key, occurred_at=now, now=now, component=component)
                    out += self.call(component, agent, handler, key, tick, now, states=list(states.values()))
        return out

    def call(self, component, agent, handler, key, event, now, states=None) -> list[Event]:
        """Through :func:`apply`, the runtime's own step (dedupe, conflict, the handler, the verdict)."""
        table = self.states[(component, agent.name)]
        candidates = states if states is not None else [None, *table[key].values()]
        content = hashlib.blake2b(json.dumps(event.to_json_dict(), sort_keys=True, default=str).encode(),
                                  digest_size=8).hexdigest()
        emitted: list[Event] = []
        for record in candidates:
            fingerprint = (component, agent.name, key, json.dumps(record, sort_keys=True, default=str),
                           event.event_id, content, now)
            if fingerprint in self.seen_calls:
                continue
            self.seen_calls.add(fingerprint)
            self.calls += 1
            state = unpack(record)[0] if agent.dedupe else record
            before = json.loads(json.dumps(state, default=str))
            applied = apply(agent, handler, record, event, now, content)
            where = f"{component}.{agent.name} on {event.type_name} (key {key}, state {str(state)[:200]})"
            self.verdicts[(component, agent.name, applied.verdict)] += 1
            if applied.verdict in ("ignored", "conflict"):
                if not (isinstance(applied.reason, str) and applied.reason.strip()):
                    self.silent.append(f"{where}: {applied.verdict} without a reason")
                continue
            if applied.verdict == "duplicate":
                emitted += applied.events  # a responder answers a repeat again
                continue
            after = unpack(applied.record)[0] if agent.dedupe else applied.record
            if not applied.events and json.loads(json.dumps(after, default=str)) == before:
                self.silent.append(f"{where}: handled, yet no events and the same state (nothing counted)")
                continue
            if applied.write and applied.record is not None:
                kept = table[key]
                kept.setdefault(json.dumps(applied.record, sort_keys=True, default=str), applied.record)
                limit = OBSERVER_STATES_PER_KEY if agent.observe is not None else MAX_STATES_PER_KEY
                while len(kept) > limit:  # the first few and the newest (the furthest along) stay
                    del kept[list(kept)[limit // 2]]
            latest = self.latest[(component, agent.name)]
            latest[key] = max(latest.get(key, 0), now)
            emitted += applied.events
        self.emitted += emitted
        return emitted


def test_every_branch_of_every_handler_acts_or_names_why_it_does_not(built):
    walk = Walk(built)
    wanted: set[tuple[str, int]] = set()
    for entries in walk.handlers.values():
        for _, _, handler, _ in entries:
            wanted |= _returns(_function(handler))
    from opengym_streams.saga import Saga

    for name in ("_enter", "_answer", "_fail"):
        wanted |= _returns(getattr(Saga, name))
    files = {path for path, _ in wanted}
    ran: set[tuple[str, int]] = set()

    def tracer(frame, event, arg):
        if frame.f_code.co_filename not in files:
            return None

        def local(frame, event, arg):
            if event == "line":
                ran.add((frame.f_code.co_filename, frame.f_lineno))
            return local
        return local

    seeds = _seed_events()
    sys.settrace(tracer)
    try:
        walk.feed(seeds)
        for _ in range(2):
            walk.feed(walk.tick_everything())
        # Replays: everything again, now that every key has its states, and every event once more under
        # another event id (a producer that retried with a new id, a replayed confirmation).
        # And once dated a day later (a reply after its deadline).
        again = [e.model_copy(update={"event_id": f"{e.event_id}-again"}) for e in seeds + walk.emitted]
        late = [e.model_copy(update={"event_id": f"{e.event_id}-late", "occurred_at": e.occurred_at + 86_400_000})
                for e in walk.emitted if e.type_name != CLOCK_TICKED]
        # And some under their own ids with other content (a conflicting duplicate).
        forged = [e.model_copy(update={"causation_id": "forged"}) for e in walk.emitted
                  if e.type_name != CLOCK_TICKED][:200]
        walk.feed(seeds + walk.emitted + again + late + forged)
        walk.feed(walk.tick_everything())
        observer = built["correlation"]
        agent = observer.agents[0]
        outside = next(e for e in seeds if e.type_name not in observer.catalog.events)
        walk.call("correlation", agent, agent.handlers[next(iter(observer.catalog.events))], outside.correlation_id,
                  outside, outside.occurred_at)
    finally:
        sys.settrace(None)

    print(f"{walk.calls} calls; verdicts: {dict(walk.verdicts)}")
    assert walk.silent == [], f"{len(walk.silent)} silent drops:\n" + "\n".join(walk.silent[:20])
    missed = sorted(wanted - ran)
    shown = [f"{Path(p).relative_to(Path(p).parents[2])}:{line}: {Path(p).read_text().splitlines()[line - 1].strip()}"
             for p, line in missed]
    assert not missed, f"{len(missed)} handler branches never ran ({walk.calls} calls):\n" + "\n".join(shown)
