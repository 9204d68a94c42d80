"""The facts of a booking run, by booking: the views OpenGym's invariants, summary and driver read."""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from opengym_streams.demo.facts import Facts, symbol  # noqa: F401  (symbol: re-exported for the checks)
from opengym_streams.event import Event

TERMINAL_TYPES = ("ReservationConfirmed", "ReservationRejected")
SETTLEMENT_OUTCOME_TYPES = ("SettlementConfirmed", "SettlementEscalated")


def downstream_types(exclude_owners: Iterable[str] = ()) -> tuple[str, ...]:
    """The fact that starts each downstream process of OpenGym's catalog, in catalog order (without
    those of the components in ``exclude_owners``)."""
    from opengym.agents.system import SYSTEM

    return tuple(proc.start for bt in SYSTEM.catalog.transactions for proc in bt.downstream
                 if proc.owner not in exclude_owners)


DOWNSTREAM_TYPES = downstream_types()
"""What the demo expects of every confirmed booking, derived from the catalog's downstream processes."""


class BookingFacts(Facts):
    """:class:`Facts` with the views by booking."""

    def by_booking(self, *type_names: str) -> dict[str, list[Event]]:
        grouped: dict[str, list[Event]] = defaultdict(list)
        for event in self.of(*type_names):
            grouped[event.booking_id].append(event)
        return grouped

    def requests(self, booking_ids: Iterable[str] | None = None) -> dict[str, Event]:
        """The BookClassRequested events (one per booking id; the first seen), optionally only these."""
        return self.first("BookClassRequested", booking_ids, field="booking_id")

    def terminals(self) -> dict[str, list[Event]]:
        return self.by_booking(*TERMINAL_TYPES)

    def capacities(self) -> dict[str, int]:
        """Class capacity as scheduled (ClassScheduled, else the request to schedule it)."""
        capacity = {e.class_id: e.capacity for e in self.of("ScheduleClassRequested")}
        capacity.update({e.class_id: e.capacity for e in self.of("ClassScheduled")})
        return capacity

    def instrument_kinds(self) -> dict[str, str]:
        kinds = {e.instrument_id: symbol(e.kind) for e in self.of("InstrumentGrantRequested", "InstrumentGranted")}
        kinds.update({e.instrument_id: symbol(e.instrument_kind) for e in self.of("InstrumentConsumed")})
        return kinds
