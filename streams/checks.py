"""Contract checks: what an event must satisfy beyond its Avro schema, declared once per event type in a
system's topic catalog and applied by the runtime wherever the event is read.

A check takes the decoded event and returns ``None`` when it holds, else the reason (one line).
:func:`envelope` is the check every record gets where it enters: its key, its ids and its dates.
"""

from __future__ import annotations

from typing import Any, Callable

Check = Callable[[Any], "str | None"]


def correlates_by(field: str) -> Check:
    """The contract that an event's correlation id is its ``field`` (e.g. booking_id)."""
    def check(event) -> str | None:
        value = getattr(event, field)
        if not value:
            return f"{field} must not be empty"
        if event.correlation_id != value:
            return f"correlation_id {event.correlation_id!r} must equal {field} {value!r}"
        return None
    return check


def non_empty(*fields: str) -> Check:
    def check(event) -> str | None:
        for field in fields:
            if not getattr(event, field):
                return f"{field} must not be empty"
        return None
    return check


def positive(field: str) -> Check:
    def check(event) -> str | None:
        value = getattr(event, field)
        return None if value is not None and value > 0 else f"{field} must be > 0, got {value}"
    return check


def all_of(*checks: Check) -> Check:
    def check(event) -> str | None:
        for one in checks:
            reason = one(event)
            if reason:
                return reason
        return None
    return check


def envelope(event, key: bytes | None, key_field: str, timestamp_ms: int | None, *, max_skew_ms: int,
             max_age_ms: int) -> str | None:
    """What every record must satisfy where it enters: a key equal to its ``key_field`` (the correlation
    id unless the topic says otherwise), non-empty ids, and an ``occurred_at`` after 1970 and within the
    allowed skew of the record's broker timestamp."""
    if not event.event_id:
        return "event_id must not be empty"
    if not event.correlation_id:
        return "correlation_id must not be empty"
    if key is None:
        return f"the record has no key; it must be the event's {key_field}"
    if key_field not in type(event).model_fields:  # a record the topic carries without that field (a tick)
        key_field = "correlation_id"
    expected = getattr(event, key_field)
    try:
        decoded = key.decode()
    except UnicodeDecodeError:
        return f"the record key is not UTF-8; it must be the event's {key_field} {expected!r}"
    if decoded != str(expected):
        return f"the record key {decoded!r} is not the event's {key_field} {expected!r}"
    if event.occurred_at < 0:
        return f"occurred_at {event.occurred_at} is before 1970"
    if timestamp_ms is not None and timestamp_ms > 0:
        if event.occurred_at > timestamp_ms + max_skew_ms:
            return (f"occurred_at {event.occurred_at} is {event.occurred_at - timestamp_ms} ms ahead of the "
                    f"record's timestamp {timestamp_ms} (allowed: {max_skew_ms} ms, OPENGYM_MAX_CLOCK_SKEW_MS)")
        if event.occurred_at < timestamp_ms - max_age_ms:
            return (f"occurred_at {event.occurred_at} is {timestamp_ms - event.occurred_at} ms before the "
                    f"record's timestamp {timestamp_ms} (allowed: {max_age_ms} ms, OPENGYM_MAX_EVENT_AGE_MS)")
    return None
