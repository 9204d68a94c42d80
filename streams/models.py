"""Event models derived from streams/schemas/**/*.avsc by streams.modelgen. DO NOT EDIT.

Regenerate with `opengym contracts generate`; a unit test fails when this file drifts.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar

from pydantic import StrictBool, StrictInt, StrictStr

from opengym_streams.event import Event


class AnomalyKind(str, Enum):
    NESTED_TIMEOUT = "NESTED_TIMEOUT"
    DOWNSTREAM_NOT_STARTED = "DOWNSTREAM_NOT_STARTED"
    DOWNSTREAM_NOT_COMPLETED = "DOWNSTREAM_NOT_COMPLETED"
    CHAIN_STALLED = "CHAIN_STALLED"
    REPLY_WITHOUT_REQUEST = "REPLY_WITHOUT_REQUEST"
    LATE_REPLY = "LATE_REPLY"
    UNKNOWN = "UNKNOWN"


class AnomalyDetected(Event):
    """The observer saw a transaction deviate from its catalog entry. It reports; it never acts."""

    avro_name: ClassVar[str] = "opengym.correlation.AnomalyDetected"
    owner: ClassVar[str] = "correlation"
    anomaly_id: StrictStr
    kind: AnomalyKind
    business_transaction: StrictStr
    process: StrictStr
    expected: StrictStr
    since: StrictInt
    deadline: StrictInt
    detected_at: StrictInt
    process_owner: StrictStr | None = None


class ClockTicked(Event):
    """A timer tick: time entering a component as data (correlation_id = 'clock')."""

    avro_name: ClassVar[str] = "opengym.streams.ClockTicked"
    owner: ClassVar[str] = "streams"
    now: StrictInt
    component: StrictStr


class DeadLetter(Event):
    """A message a component could not decode or that broke its contract."""

    avro_name: ClassVar[str] = "opengym.streams.DeadLetter"
    owner: ClassVar[str] = "streams"
    component: StrictStr
    source_topic: StrictStr
    source_partition: StrictInt
    source_offset: StrictInt
    error_kind: StrictStr
    reason: StrictStr
    key: bytes | None = None
    payload: bytes | None = None
    payload_size: StrictInt | None = None
    payload_sha256: StrictStr | None = None
    payload_truncated: StrictBool = False


class DeadLetterRedriven(Event):
    """An operator re-published a dead letter to the topic it came from (opengym dlq redrive, or the observer's UI). Recorded once per dead letter: redriving it again finds this record and sends nothing."""

    avro_name: ClassVar[str] = "opengym.streams.DeadLetterRedriven"
    owner: ClassVar[str] = "streams"
    component: StrictStr
    dead_letter_topic: StrictStr
    dead_letter_partition: StrictInt
    dead_letter_offset: StrictInt
    target_topic: StrictStr
    target_partition: StrictInt
    target_offset: StrictInt
    redriven_by: StrictStr
    error_kind: StrictStr | None = None


ALL_EVENTS: tuple[type[Event], ...] = (
    AnomalyDetected,
    ClockTicked,
    DeadLetter,
    DeadLetterRedriven,
)
BY_AVRO_NAME: dict[str, type[Event]] = {cls.avro_name: cls for cls in ALL_EVENTS}
BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}
