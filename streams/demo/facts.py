"""What the components published, deduplicated by event_id and indexed the way the checks read it."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from opengym_streams.event import Event

TERMINAL_TYPES = ("ReservationConfirmed", "ReservationRejected")


def downstream_types(exclude_owners: Iterable[str] = ()) -> tuple[str, ...]:
    """The fact that starts each downstream process of the system's catalog, in catalog order (without
    those of the components in ``exclude_owners``)."""
    from opengym_streams.system import load

    return tuple(proc.start for bt in load().catalog.transactions for proc in bt.downstream
                 if proc.owner not in exclude_owners)


DOWNSTREAM_TYPES = downstream_types()
"""What the demo expects of every confirmed booking, derived from the catalog's downstream processes."""
SETTLEMENT_OUTCOME_TYPES = ("SettlementConfirmed", "SettlementEscalated")


class Facts:
    """Every distinct event seen (by event_id), by type; redeliveries are counted, not kept twice."""

    def __init__(self, events: Iterable[Event] = ()):
        self.by_id: dict[str, Event] = {}
        self.by_type: dict[str, list[Event]] = defaultdict(list)
        self.redelivered: Counter = Counter()
        """type -> deliveries of an event_id seen before."""
        self.deliveries: Counter = Counter()
        """event_id -> how many times it was on a topic."""
        self.conflicts: list[tuple[Event, Event]] = []
        """Two copies of one event_id whose contents differ: a handler that is not deterministic
        on redelivery (its derived event id is the same, what it says is not)."""
        self.dead_letters: Counter = Counter()
        """component -> count of DeadLetter events on its topic."""
        self.extend(events)

    def add(self, event: Event) -> bool:
        """Keep ``event``; False when its event_id was seen already (a redelivery)."""
        self.deliveries[event.event_id] += 1
        first = self.by_id.get(event.event_id)
        if first is not None:
            self.redelivered[event.type_name] += 1
            if _payload(first) != _payload(event):
                self.conflicts.append((first, event))
            return False
        self.by_id[event.event_id] = event
        self.by_type[event.type_name].append(event)
        if event.type_name == "DeadLetter":
            self.dead_letters[event.component] += 1
        return True

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def of(self, *type_names: str) -> list[Event]:
        if len(type_names) == 1:
            return self.by_type.get(type_names[0], [])
        return [e for t in type_names for e in self.by_type.get(t, [])]

    def count(self, type_name: str) -> int:
        return len(self.by_type.get(type_name, ()))

    def by_booking(self, *type_names: str) -> dict[str, list[Event]]:
        grouped: dict[str, list[Event]] = defaultdict(list)
        for event in self.of(*type_names):
            grouped[event.booking_id].append(event)
        return grouped

    def requests(self, booking_ids: Iterable[str] | None = None) -> dict[str, Event]:
        """The BookClassRequested events (one per booking id; the first seen), optionally only these."""
        wanted = set(booking_ids) if booking_ids is not None else None
        found: dict[str, Event] = {}
        for event in self.of("BookClassRequested"):
            if wanted is None or event.booking_id in wanted:
                found.setdefault(event.booking_id, event)
        return found

    def terminals(self) -> dict[str, list[Event]]:
        return self.by_booking(*TERMINAL_TYPES)

    def capacities(self) -> dict[str, int]:
        """Class capacity as scheduled (ClassScheduled, else the request to schedule it)."""
        capacity = {e.class_id: e.capacity for e in self.of("ScheduleClassRequested")}
        capacity.update({e.class_id: e.capacity for e in self.of("ClassScheduled")})
        return capacity

    def instrument_kinds(self) -> dict[str, str]:
        kinds = {e.instrument_id: _symbol(e.kind) for e in self.of("InstrumentGrantRequested", "InstrumentGranted")}
        kinds.update({e.instrument_id: _symbol(e.instrument_kind) for e in self.of("InstrumentConsumed")})
        return kinds


def _payload(event: Event) -> dict:
    data = event.to_record()
    data.pop("occurred_at", None)
    return data


def _symbol(value) -> str:
    return getattr(value, "value", value)


symbol = _symbol
