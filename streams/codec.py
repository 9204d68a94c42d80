"""The Avro codec: Confluent wire format, TopicRecordNameStrategy subjects, schema ids cached.

Wire format: magic byte 0, 4-byte big-endian schema id, Avro binary. Subjects are
``<topic>-<record full name>``, so confluent-kafka's AvroSerializer/AvroDeserializer, kcat with a
registry and the Java serdes interoperate with it both ways.

Decoding looks the writer schema up by id (once per id), resolves it against our own contract of
the same record name, and returns the generated model. Anything wrong with a payload raises
:class:`DecodeError` with a kind the components use to dead-letter it.
"""

from __future__ import annotations

import io
import json
import struct
import threading
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from pydantic import ValidationError

from opengym_streams.contracts import Contract, Contracts, load_contracts, strip_logical_types
from opengym_streams.event import Event, model_for
from opengym_streams.security import registry_client_config
from opengym_streams.settings import Settings, get_settings

MAGIC = 0
_HEADER = struct.Struct(">bI")


class DecodeError(Exception):
    """A payload that cannot become an event. ``kind`` is one of the class constants."""

    NOT_FRAMED = "NOT_FRAMED"
    UNKNOWN_SCHEMA_ID = "UNKNOWN_SCHEMA_ID"
    UNKNOWN_RECORD = "UNKNOWN_RECORD"
    UNDECODABLE = "UNDECODABLE"
    CONTRACT_VIOLATION = "CONTRACT_VIOLATION"

    def __init__(self, kind: str, reason: str, schema_id: int | None = None):
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.schema_id = schema_id


class EncodeError(ValueError):
    """An event that cannot be written under its contract."""


def subject_name(topic: str, avro_full_name: str) -> str:
    """TopicRecordNameStrategy."""
    return f"{topic}-{avro_full_name}"


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(event)"
        got = ""
        if err["type"] != "missing":
            shown = repr(err.get("input"))
            got = f" (got {shown[:60]}{'...' if len(shown) > 60 else ''})"
        parts.append(f"{where}: {err['msg']}{got}")
    return "; ".join(parts)


@dataclass(frozen=True)
class _Reader:
    contract: Contract
    model: type[Event]
    writer: Any
    reader: Any | None  # None when writer and reader schemas are the same


def registry_client(settings: Settings | None = None, **config: Any) -> SchemaRegistryClient:
    """A client of the settings' registry, with the credentials and CA of :mod:`streams.security`."""
    return SchemaRegistryClient(registry_client_config((settings or get_settings()).registry_url, **config))


class AvroCodec:
    """Encode events to, and decode them from, Confluent-framed Avro."""

    def __init__(self, registry: SchemaRegistryClient | None = None, contracts: Contracts | None = None,
                 auto_register: bool = True):
        self.registry = registry if registry is not None else registry_client()
        self.contracts = contracts or load_contracts()
        self.auto_register = auto_register
        self._ids: dict[tuple[str, str], int] = {}
        self._readers: dict[int, _Reader] = {}
        self._lock = threading.Lock()

    # ---- what needs no registry call --------------------------------------------------------

    def can_encode_offline(self, topic: str, avro_name: str) -> bool:
        """True when encoding this record for this topic needs no registry call (its id is cached)."""
        return (topic, avro_name) in self._ids

    def can_decode_offline(self, payload: bytes | None) -> bool:
        """True when this payload's schema id is cached, so decoding it needs no registry call."""
        return payload is not None and len(payload) >= _HEADER.size and \
            int.from_bytes(payload[1:5], "big") in self._readers

    def record_name(self, payload: bytes | None) -> str | None:
        """The short record name of a payload whose schema id is cached (no decoding), else None."""
        if payload is None or len(payload) < _HEADER.size or payload[0] != MAGIC:
            return None
        reader = self._readers.get(int.from_bytes(payload[1:5], "big"))
        return reader.contract.name if reader is not None else None

    # ---- encoding ----------------------------------------------------------------------------

    def schema_id(self, topic: str, contract: Contract) -> int:
        key = (topic, contract.full_name)
        schema_id = self._ids.get(key)
        if schema_id is None:
            subject = subject_name(topic, contract.full_name)
            schema = Schema(contract.schema_str, "AVRO")
            if self.auto_register:
                schema_id = self.registry.register_schema(subject, schema)
            else:
                schema_id = self.registry.lookup_schema(subject, schema).schema_id
            with self._lock:
                self._ids[key] = schema_id
        return schema_id

    def encode(self, event: Event, topic: str) -> bytes:
        contract = self.contracts.get(event.avro_name)
        schema_id = self.schema_id(topic, contract)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, schema_id))
        try:
            fastavro.schemaless_writer(buf, contract.parsed, event.to_record())
        except (ValueError, TypeError) as exc:
            raise EncodeError(f"{contract.name} does not fit its contract: {exc}") from exc
        return buf.getvalue()

    # ---- decoding ----------------------------------------------------------------------------

    def _reader_for(self, schema_id: int) -> _Reader:
        reader = self._readers.get(schema_id)
        if reader is not None:
            return reader
        try:
            registered = self.registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise DecodeError(DecodeError.UNKNOWN_SCHEMA_ID,
                                  f"schema id {schema_id} is not in the registry", schema_id) from exc
            raise
        try:
            writer_json = json.loads(registered.schema_str)
        except json.JSONDecodeError as exc:
            raise DecodeError(DecodeError.UNDECODABLE, f"schema id {schema_id} is not JSON", schema_id) from exc
        if not isinstance(writer_json, dict) or writer_json.get("type") != "record":
            raise DecodeError(DecodeError.UNKNOWN_RECORD,
                              f"schema id {schema_id} is not an Avro record schema", schema_id)
        name = writer_json.get("name", "")
        full_name = name if "." in name else f"{writer_json.get('namespace', '')}.{name}"
        try:
            contract = self.contracts.get(full_name)
        except KeyError:
            raise DecodeError(DecodeError.UNKNOWN_RECORD,
                              f"schema id {schema_id} is record {full_name}, which has no contract here",
                              schema_id) from None
        writer = fastavro.parse_schema(strip_logical_types(writer_json), _write_hint=False)
        same = strip_logical_types(writer_json) == strip_logical_types(contract.schema)
        model = model_for(contract.full_name)
        if model is None:
            raise DecodeError(DecodeError.UNKNOWN_RECORD, f"schema id {schema_id} is record {full_name}, whose model "
                              "is not loaded here", schema_id)
        reader = _Reader(contract, model, writer, None if same else contract.parsed)
        with self._lock:
            self._readers[schema_id] = reader
        return reader

    def decode_record(self, payload: bytes | None) -> tuple[_Reader, dict[str, Any]]:
        if payload is None or len(payload) < _HEADER.size:
            raise DecodeError(DecodeError.NOT_FRAMED,
                              f"payload of {0 if payload is None else len(payload)} bytes is too short "
                              "for the Confluent framing (magic byte + 4-byte schema id)")
        magic, schema_id = _HEADER.unpack_from(payload)
        if magic != MAGIC:
            raise DecodeError(DecodeError.NOT_FRAMED, f"first byte is {payload[0]}, not the magic byte 0")
        reader = self._reader_for(schema_id)
        body = io.BytesIO(payload)
        body.seek(_HEADER.size)
        try:
            record = fastavro.schemaless_reader(body, reader.writer, reader.reader)
        except Exception as exc:  # truncated or corrupt Avro surfaces as many exception types
            raise DecodeError(DecodeError.UNDECODABLE,
                              f"Avro body does not decode with schema id {schema_id} "
                              f"({reader.contract.name}): {type(exc).__name__}: {exc}", schema_id) from exc
        if body.tell() != len(payload):
            raise DecodeError(DecodeError.UNDECODABLE,
                              f"{len(payload) - body.tell()} trailing bytes after a {reader.contract.name} "
                              f"record (schema id {schema_id})", schema_id)
        return reader, record

    def decode(self, payload: bytes | None) -> Event:
        reader, record = self.decode_record(payload)
        try:
            event = reader.model.model_validate(record)
        except ValidationError as exc:
            raise DecodeError(DecodeError.CONTRACT_VIOLATION,
                              f"{reader.contract.name}: {format_validation_error(exc)}") from exc
        if not event.event_id or not event.correlation_id:
            raise DecodeError(DecodeError.CONTRACT_VIOLATION,
                              f"{reader.contract.name}: event_id and correlation_id must not be empty")
        return event


def build_event(data: dict[str, Any], *, fill_envelope: bool = True) -> Event:
    """An event from its JSON form ``{"type": "<Name or full name>", ...fields}``.

    Raises ``ValueError`` with the field and the reason. ``event_id`` and ``occurred_at`` are filled
    in when absent (if ``fill_envelope``).
    """
    import uuid

    from opengym_streams.event import now_ms
    if not isinstance(data, dict):
        raise ValueError(f"an event is a JSON object, got {type(data).__name__}")
    data = dict(data)
    type_name = data.pop("type", None)
    if not type_name:
        raise ValueError('type: missing; say which event this is, e.g. "type": "BookClassRequested"')
    model = model_for(type_name)
    if model is None:
        raise ValueError(f"type: unknown event {type_name!r}")
    if fill_envelope:
        data.setdefault("event_id", str(uuid.uuid4()))
        data.setdefault("occurred_at", now_ms())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{model.__name__}: {format_validation_error(exc)}") from None
