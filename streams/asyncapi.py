"""A system's catalogs as one AsyncAPI 3.0 document: its topics as channels, its Avro contracts as
messages (by reference to the ``.avsc`` files), who sends and who receives each as operations, and each
orchestration's nested request/reply pairs as operations with a ``reply``.

Everything comes in as arguments (the topic catalog, the process catalog, the contracts, the apps'
subscriptions), so any system built on the runtime can describe itself; nothing here names one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Protocol

from opengym_streams.catalog import Catalog, NestedPair, Orchestration
from opengym_streams.catalog_docs import duration
from opengym_streams.contracts import Contract, Contracts

ASYNCAPI_VERSION = "3.0.0"
AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
KAFKA_BINDING = "0.5.0"
CORRELATION_ID = "correlation_id"
CORRELATION_LOCATION = "$message.payload#/correlation_id"

CLOCK_TICK = "ClockTicked"
DEAD_LETTER = "DeadLetter"
"""The runtime's own records: a component's timer writes ticks to the clock topic it owns, and its
dead letters to its own dead-letter topic, so their sender is the topic's owner, whoever else may write it."""


class TopicLike(Protocol):
    """What a topic catalog entry offers (:class:`streams.topic.Topic`)."""

    name: str
    owner: str
    events: tuple[str, ...]
    kind: str
    partitions: int
    key: str
    doc: str

    @property
    def writers(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Info:
    title: str
    version: str
    description: str = ""


def kafka_server(bootstrap: str, registry_url: str, registry_vendor: str, description: str = "") -> dict:
    """A Server Object for a Kafka broker with a schema registry (Confluent-compatible API URL)."""
    server = {"host": bootstrap, "protocol": "kafka"}
    if description:
        server["description"] = description
    server["bindings"] = {"kafka": {"schemaRegistryUrl": registry_url, "schemaRegistryVendor": registry_vendor,
                                    "bindingVersion": KAFKA_BINDING}}
    return server


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def _ref(*path: str) -> dict:
    # JSON pointer escaping: '~' first, then '/'.
    return {"$ref": "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)}


class _Builder:
    def __init__(self, topics: Iterable[TopicLike], catalog: Catalog, contracts: Contracts,
                 subscriptions: Mapping[str, Iterable[str]], document_dir: Path, external: str | None):
        self.topics = tuple(topics)
        self.by_name = {t.name: t for t in self.topics}
        self.catalog = catalog
        self.contracts = contracts
        self.document_dir = document_dir
        self.external = external
        self.readers: dict[str, list[str]] = {}
        for component in sorted(subscriptions):
            for name in sorted(set(subscriptions[component])):
                if name not in self.by_name:
                    raise ValueError(f"{component} reads {name}, which the topic catalog does not declare")
                self.readers.setdefault(name, []).append(component)
        self.producers = catalog.producers()
        self.covered: set[tuple[str, str, str, str]] = set()
        """(component, action, topic, event) already stated by a request/reply operation."""

    # ---- messages ---------------------------------------------------------------------------------
    def contract(self, full_name: str) -> Contract:
        try:
            return self.contracts.get(full_name)
        except KeyError:
            raise KeyError(f"{full_name} is carried by a topic but has no contract") from None

    def schemas(self) -> dict:
        used = {self.contract(e).name: self.contract(e) for t in self.topics for e in t.events}
        out = {}
        for name in sorted(used):
            contract = used[name]
            path = Path(os.path.relpath(contract.path.resolve(), self.document_dir.resolve())).as_posix()
            out[name] = {"schemaFormat": AVRO_FORMAT, "schema": {"$ref": path}}
        return out

    def message(self, topic: TopicLike, full_name: str) -> dict:
        contract = self.contract(full_name)
        message = {"name": contract.full_name, "title": contract.name}
        if contract.schema.get("doc"):
            message["summary"] = contract.schema["doc"]
        message["payload"] = _ref("components", "schemas", contract.name)
        message["correlationId"] = _ref("components", "correlationIds", CORRELATION_ID)
        message["bindings"] = _ref("components", "messageBindings", _key_binding(topic.key))
        return message

    def message_bindings(self) -> dict:
        """One Kafka message binding per topic key: the key, and the Confluent framing of the value
        (schema id in the payload; subjects by TopicRecordNameStrategy)."""
        return {_key_binding(key): {"kafka": {
            "key": {"type": "string", "description": f"The record's {key}, UTF-8."},
            "schemaIdLocation": "payload",
            "schemaIdPayloadEncoding": "confluent",
            "schemaLookupStrategy": "TopicRecordNameStrategy",
            "bindingVersion": KAFKA_BINDING,
        }} for key in dict.fromkeys(t.key for t in self.topics)}

    # ---- channels ---------------------------------------------------------------------------------
    def channels(self) -> dict:
        out = {}
        for topic in self.topics:
            out[topic.name] = {
                "address": topic.name,
                "title": topic.name,
                **({"description": topic.doc} if topic.doc else {}),
                "messages": {self.contract(e).name: self.message(topic, e) for e in topic.events},
                "bindings": {"kafka": {"partitions": topic.partitions, "bindingVersion": KAFKA_BINDING}},
                "x-owner": topic.owner,
                "x-kind": topic.kind,
                "x-key": topic.key,
            }
        return out

    # ---- who sends, who receives --------------------------------------------------------------------
    def carrier(self, event: str, who: str) -> TopicLike:
        """The one topic (repartition topics aside) that carries an event of a nested pair."""
        found = [t for t in self.topics if t.kind != "internal" and any(_short(e) == event for e in t.events)]
        if len(found) != 1:
            raise ValueError(f"{who}: {event} is carried by {len(found)} topics; a request/reply operation "
                             "needs exactly one")
        return found[0]

    def senders(self, topic: TopicLike, full_name: str) -> list[str]:
        event = _short(full_name)
        writers = list(topic.writers)
        if event in (CLOCK_TICK, DEAD_LETTER) and topic.owner in writers:
            return [topic.owner]
        declared = [w for w in writers if w in self.producers.get(event, ())]
        if declared:
            return declared
        if len(writers) > 1 and self.external in writers:
            return [self.external]
        return writers

    def pair_operations(self) -> dict:
        out = {}
        for bt in self.catalog.transactions:
            orch = bt.orchestration
            if orch is None:
                continue
            for pair in orch.nested:
                out.update(self.pair(orch, pair))
        return out

    def pair(self, orch: Orchestration, pair: NestedPair) -> dict:
        who = f"{orch.name} / {pair.name}"
        request_topic = self.carrier(pair.request, who)
        reply_topics = {self.carrier(r, who).name for r in pair.replies}
        if len(reply_topics) != 1:
            raise ValueError(f"{who}: its replies travel on {len(reply_topics)} topics; an AsyncAPI reply has one "
                             "channel")
        reply_topic = self.by_name[reply_topics.pop()]
        kind = "compensation" if pair.compensation else "nested"
        deadline = f"{duration(pair.deadline_ms)} from the {pair.deadline_from}"
        reply = {"channel": _ref("channels", reply_topic.name),
                 "messages": [_ref("channels", reply_topic.name, "messages", r) for r in pair.replies]}
        request = [_ref("channels", request_topic.name, "messages", pair.request)]
        self.covered |= {(orch.owner, "send", request_topic.name, pair.request),
                         (pair.participant, "receive", request_topic.name, pair.request)}
        self.covered |= {(pair.participant, "send", reply_topic.name, r) for r in pair.replies}
        self.covered |= {(orch.owner, "receive", reply_topic.name, r) for r in pair.replies}
        doc = f" {pair.doc}" if pair.doc else ""
        return {
            f"{orch.owner}.send.{pair.name}": {
                "action": "send", "channel": _ref("channels", request_topic.name),
                "title": f"{pair.name}: {orch.owner} requests",
                "summary": f"{orch.name} asks {pair.participant} and waits for one reply of the closed set "
                           f"({kind} pair, deadline {deadline}).{doc}",
                "messages": request, "reply": reply, "x-component": orch.owner,
            },
            f"{pair.participant}.receive.{pair.name}": {
                "action": "receive", "channel": _ref("channels", request_topic.name),
                "title": f"{pair.name}: {pair.participant} answers",
                "summary": f"{pair.participant} owns {pair.name}: it answers {orch.name}'s request with one "
                           f"reply of the closed set ({kind} pair).{doc}",
                "messages": request, "reply": reply, "x-component": pair.participant,
            },
        }

    def topic_operations(self) -> dict:
        out = {}
        for topic in self.topics:
            sent: dict[str, list[str]] = {}
            for full_name in topic.events:
                for sender in self.senders(topic, full_name):
                    sent.setdefault(sender, []).append(self.contract(full_name).name)
            for sender, events in sent.items():
                out.update(self.operation(sender, "send", topic, events))
            every = [self.contract(e).name for e in topic.events]
            for reader in self.readers.get(topic.name, ()):
                out.update(self.operation(reader, "receive", topic, every))
        return out

    def operation(self, component: str, action: str, topic: TopicLike, events: list[str]) -> dict:
        events = [e for e in events if (component, action, topic.name, e) not in self.covered]
        if not events:
            return {}
        verb = "sends to" if action == "send" else "reads"
        return {f"{component}.{action}.{topic.name}": {
            "action": action, "channel": _ref("channels", topic.name),
            "title": f"{component} {verb} {topic.name}",
            "messages": [_ref("channels", topic.name, "messages", e) for e in events],
            "x-component": component,
        }}


def _key_binding(key: str) -> str:
    return f"keyed-by-{key}"


def document(topics: Iterable[TopicLike], catalog: Catalog, contracts: Contracts,
             subscriptions: Mapping[str, Iterable[str]], info: Info, document_dir: Path,
             servers: Mapping[str, dict] | None = None, external: str | None = None) -> dict:
    """The AsyncAPI document, as a dict ready for JSON.

    ``subscriptions``: component -> the topic names its app reads (each becomes a receive operation).
    ``document_dir``: where the document will live, so the ``.avsc`` references are relative to it.
    ``external``: the writer name that stands for producers outside the system; a record no process
    of the catalog publishes, on a topic others may write too, is sent by it.
    """
    builder = _Builder(topics, catalog, contracts, subscriptions, document_dir, external)
    head = {"title": info.title, "version": info.version}
    if info.description:
        head["description"] = info.description
    doc: dict = {"asyncapi": ASYNCAPI_VERSION, "info": head}
    if servers:
        doc["servers"] = dict(servers)
    doc["defaultContentType"] = "application/octet-stream"
    doc["channels"] = builder.channels()
    operations = builder.pair_operations()
    operations.update(builder.topic_operations())
    doc["operations"] = operations
    doc["components"] = {
        "schemas": builder.schemas(),
        "messageBindings": builder.message_bindings(),
        "correlationIds": {CORRELATION_ID: {
            "description": "The business transaction id: every record of one transaction carries it, and the "
                           "contract topics are keyed by it. A reply also names its request in causation_id "
                           "(the request's event_id).",
            "location": CORRELATION_LOCATION,
        }},
    }
    return doc


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(doc: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc))
    return path
