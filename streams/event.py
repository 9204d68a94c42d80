"""The envelope every event starts with, and how new events are made from their causes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

E = TypeVar("E", bound="Event")

_EVENT_IDS = uuid.UUID("6f1d2c1e-0b7a-4f57-9a43-0e6a1c7d9b11")


def now_ms() -> int:
    return int(time.time() * 1000)


def derived_event_id(cause_event_id: str, event_type: str, discriminator: str = "", correlation_id: str = "") -> str:
    """The id of the event that ``cause`` makes a handler emit.

    Deterministic, so a redelivered cause re-emits the *same* event id and the consumer's
    dedupe by event_id makes the effect happen once (at-least-once in, exactly-once effect out).
    The emitted event's correlation id is part of it: a forged cause that reuses an event id under
    another transaction cannot make a handler publish one id with two different contents.
    """
    return str(uuid.uuid5(_EVENT_IDS, f"{cause_event_id}/{event_type}/{discriminator}/{correlation_id}"))


MODELS: dict[str, type["Event"]] = {}
"""Every event model there is, by Avro full name and by short name (each generated model registers itself)."""


def model_for(name: str) -> type["Event"] | None:
    """The event model of a record, by Avro full name or short name (None: not loaded, or no such record)."""
    return MODELS.get(name)


class Event(BaseModel):
    """Base of every generated event model: the envelope fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64")

    avro_name: ClassVar[str] = ""
    owner: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("avro_name"):
            for name in (cls.avro_name, cls.__name__):
                known = MODELS.get(name)
                if known is not None and known.avro_name != cls.avro_name:
                    raise TypeError(f"two records named {cls.__name__}: {known.avro_name} and {cls.avro_name}")
                MODELS[name] = cls

    event_id: StrictStr
    correlation_id: StrictStr
    causation_id: StrictStr | None = None
    occurred_at: StrictInt

    @classmethod
    def new(cls: type[E], *, correlation_id: str | None = None, caused_by: "Event | None" = None,
            discriminator: str = "", occurred_at: int | None = None, event_id: str | None = None,
            **fields: Any) -> E:
        """A new event; caused by another event it inherits its correlation id and a derived id."""
        if correlation_id is None:
            if caused_by is None:
                raise ValueError("an event needs a correlation_id or a cause to take it from")
            correlation_id = caused_by.correlation_id
        if event_id is None:
            event_id = (derived_event_id(caused_by.event_id, cls.__name__, discriminator, correlation_id)
                        if caused_by is not None else str(uuid.uuid4()))
        return cls(
            event_id=event_id,
            correlation_id=correlation_id,
            causation_id=caused_by.event_id if caused_by is not None else None,
            occurred_at=now_ms() if occurred_at is None else occurred_at,
            **fields,
        )

    @property
    def type_name(self) -> str:
        return type(self).__name__

    def to_record(self) -> dict[str, Any]:
        """The Avro datum (str-valued enums are accepted by fastavro as their symbols)."""
        return dict(self.__dict__)

    def to_json_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, **self.model_dump(mode="json")}


@dataclass(frozen=True)
class Ignored:
    """What a handler returns when an event changes nothing, with the reason (counted and logged by the
    runtime as ``opengym_ignored_total{reason=...}``): nothing is ever dropped silently."""

    reason: str
    duplicate: bool = False
    """A redelivery the handler recognised itself (counted as a duplicate, not as ignored)."""
    conflict: bool = False
    """An event id the handler saw before with other content (dead-lettered as a conflict)."""
    waiting: bool = False
    """Set by :func:`not_yet`: the state this event needs may still be on its way."""
    otherwise: "Result | Ignored | None" = None
    """For :func:`not_yet`: the answer once nothing unread could bring that state (None: ignored)."""


def ignore(reason: str) -> Ignored:
    return Ignored(reason)


def not_yet(reason: str, otherwise: "Result | Ignored | None" = None) -> Ignored:
    """The state this event needs is not here (yet): a reply before the request it answers, a payment
    before the obligation it pays.

    In a running system that cannot happen, the second is caused by the first. In a replay after a crash
    it can: each input topic is read again at its own pace. Answering at once would lose the event (a
    reply ignored, then the request asked again and timed out) or decide it wrongly. So while an input
    partition of the agent still holds unread facts that could come first, the runtime keeps the event
    in the key's record ("parked") and hands it to its handler again after the next change of that state.
    Once nothing unread could come first, ``otherwise`` is the answer (None: ignored with ``reason``)."""
    return Ignored(reason, waiting=True, otherwise=otherwise)


def duplicate(reason: str = "duplicate") -> Ignored:
    return Ignored(reason, duplicate=True)


def conflict(reason: str) -> Ignored:
    return Ignored(reason, conflict=True)


Result = tuple[dict | None, list[Event]]
"""What every pure handler returns: the new state (None: keep none) and the events to emit; or
:class:`Ignored` when the event changes nothing."""

Handler = Callable[[dict | None, Event, int], "Result | Ignored"]
"""A pure step: ``(state, event, now) -> (new state, events) | Ignored``."""


def share_of(key: str, salt: str = "") -> float:
    """A stable number in [0, 1) for a key: deterministic choices (delays, failures) reruns agree on."""
    return (uuid.uuid5(uuid.NAMESPACE_OID, f"{salt}/{key}").int % 1_000_000) / 1_000_000


def value_of(enum_or_str: Any) -> Any:
    """An enum's symbol (events decoded from Avro carry str, events built in code carry the enum)."""
    return getattr(enum_or_str, "value", enum_or_str)
