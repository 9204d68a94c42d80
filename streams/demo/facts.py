"""What the components published, deduplicated by event_id and indexed by type and by transaction.

A system's demo may subclass :class:`Facts` with the views its checks read (OpenGym's by booking, say).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

from opengym_streams.event import Event


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

    def grouped(self, field: str, *type_names: str) -> dict[str, list[Event]]:
        """The events of these types by the value of one of their fields (``correlation_id``, ``order_id``)."""
        found: dict[str, list[Event]] = defaultdict(list)
        for event in self.of(*type_names):
            found[getattr(event, field)].append(event)
        return found

    def by_correlation(self, *type_names: str) -> dict[str, list[Event]]:
        return self.grouped("correlation_id", *type_names)

    def first(self, type_name: str, ids: Iterable[str] | None = None, field: str = "correlation_id") -> dict[str, Event]:
        """The first event of a type seen per transaction (optionally only for these ids)."""
        wanted = set(ids) if ids is not None else None
        found: dict[str, Event] = {}
        for event in self.of(type_name):
            key = getattr(event, field)
            if wanted is None or key in wanted:
                found.setdefault(key, event)
        return found


def _payload(event: Event) -> dict:
    data = event.to_record()
    data.pop("occurred_at", None)
    return data


def symbol(value) -> str:
    """An enum's symbol (events decoded from Avro carry str, events built in code carry the enum)."""
    return getattr(value, "value", value)
