"""docs/asyncapi/opengym.json: generated from the catalogs, never stale, and read by the real AsyncAPI
parser with its Avro schema parser (tools/node/asyncapi-validate.mjs): no error, every contract resolved,
and the operations say what the catalogs and the apps say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from opengym import topics
from opengym_streams.asyncapi import Info, document, render
from opengym_streams.catalog import Catalog
from opengym_streams.catalog_check import load_subscriptions
from opengym_streams.catalog_docs import default_catalog
from opengym_streams.commands.catalog import ASYNCAPI_PATH, asyncapi_document
from opengym_streams.contracts import Contracts, load_contracts
from opengym_streams.settings import REPO_ROOT
from tests.node_tools import run_node

ALLOWED_NOTES = {"asyncapi-latest-version"}
"""Information the parser gives on a sound document: 3.1.0 exists, and the document is 3.0.0 on purpose."""


@pytest.fixture(scope="module")
def doc() -> dict:
    return asyncapi_document()


def _copy_with_schemas(root: Path, doc: dict) -> Path:
    """The document and a copy of both contract trees laid out as in the repo, to break one of them."""
    shutil.copytree(REPO_ROOT / "schemas", root / "schemas")
    shutil.copytree(REPO_ROOT / "streams" / "schemas", root / "streams" / "schemas")
    path = root / ASYNCAPI_PATH.relative_to(REPO_ROOT)
    path.parent.mkdir(parents=True)
    path.write_text(render(doc))
    return path


@pytest.fixture(scope="module")
def reports(doc, tmp_path_factory) -> dict[str, dict]:
    """The parser's report on the real document and on two broken copies, in one Node run."""
    missing = _copy_with_schemas(tmp_path_factory.mktemp("missing"), doc)
    (missing.parents[2] / "schemas" / "finance" / "PaymentFailed.avsc").unlink()
    invalid = _copy_with_schemas(tmp_path_factory.mktemp("invalid"), doc)
    avsc = invalid.parents[2] / "schemas" / "finance" / "PaymentSettled.avsc"
    schema = json.loads(avsc.read_text())
    schema["fields"][-1]["type"] = "strnig"
    avsc.write_text(json.dumps(schema))
    found = run_node("asyncapi-validate.mjs", str(ASYNCAPI_PATH), str(missing), str(invalid))
    return dict(zip(("real", "missing", "invalid"), found))


def _problems(report: dict) -> list[dict]:
    return [d for d in report["diagnostics"] if d["severity"] in (0, 1) or d["code"] not in ALLOWED_NOTES]


def test_docs_asyncapi_is_up_to_date(doc):
    assert ASYNCAPI_PATH.exists(), "run `opengym catalog asyncapi`"
    assert ASYNCAPI_PATH.read_text() == render(doc), f"{ASYNCAPI_PATH} is stale: run `opengym catalog asyncapi`"


def test_the_asyncapi_parser_finds_no_error_or_warning_in_the_document(reports):
    assert reports["real"]["document"] is not None
    assert _problems(reports["real"]) == []
    assert reports["real"]["document"]["version"] == "3.0.0"


def test_the_parser_reports_a_missing_contract_file_and_an_invalid_avro_schema(reports):
    missing = [d for d in reports["missing"]["diagnostics"] if d["severity"] == 0]
    assert any(d["code"] == "invalid-ref" and "PaymentFailed.avsc" in d["message"] for d in missing), missing
    invalid = [d for d in reports["invalid"]["diagnostics"] if d["severity"] == 0]
    assert [(d["code"], d["path"]) for d in invalid] == [
        ("avro-schema", "channels/opengym.finance.events/messages/PaymentSettled/payload/schema")], invalid
    assert "strnig" in invalid[0]["message"]


def test_every_topic_is_a_channel_with_its_partitions_and_records(reports):
    channels = {c["id"]: c for c in reports["real"]["document"]["channels"]}
    assert list(channels) == [t.name for t in topics.ALL_TOPICS]
    for topic in topics.ALL_TOPICS:
        channel = channels[topic.name]
        assert channel["address"] == topic.name
        assert channel["partitions"] == topic.partitions
        assert [m["id"] for m in channel["messages"]] == [e.rsplit(".", 1)[1] for e in topic.events]
        assert all(m["key"]["type"] == "string" for m in channel["messages"]), topic.name


def test_every_message_is_its_avro_contract_resolved_with_the_correlation_id(reports):
    contracts = load_contracts()
    for channel in reports["real"]["document"]["channels"]:
        for message in channel["messages"]:
            contract = contracts.get(message["id"])
            where = f"{channel['id']} / {message['id']}"
            assert message["name"] == contract.full_name, where
            assert message["schemaFormat"] == "application/vnd.apache.avro;version=1.9.0", where
            assert (message["payloadType"], message["payloadFields"]) == ("object", list(contract.field_names)), where
            assert message["correlationId"] == "$message.payload#/correlation_id", where


def test_each_nested_pair_is_a_request_answered_by_its_closed_set_of_replies(reports):
    operations = {o["id"]: o for o in reports["real"]["document"]["operations"]}
    pairs = [(orch, pair) for bt in default_catalog().transactions if (orch := bt.orchestration)
             for pair in orch.nested]
    assert pairs
    for orch, pair in pairs:
        request = topics.topic_for_event(load_contracts().get(pair.request).full_name).name
        replies = {topics.topic_for_event(load_contracts().get(r).full_name).name for r in pair.replies}
        assert len(replies) == 1
        expected_reply = {"channel": replies.pop(), "messages": list(pair.replies)}
        for side, action in ((orch.owner, "send"), (pair.participant, "receive")):
            op = operations[f"{side}.{action}.{pair.name}"]
            assert (op["action"], op["component"], op["channels"], op["messages"], op["reply"]) == (
                action, side, [request], [pair.request], expected_reply), op["id"]


def test_every_writer_sends_and_every_reader_of_a_topic_receives_from_it(reports):
    operations = reports["real"]["document"]["operations"]
    readers = load_subscriptions()
    for topic in topics.ALL_TOPICS:
        on_topic = [o for o in operations if o["channels"] == [topic.name]]
        assert {o["component"] for o in on_topic if o["action"] == "send"} == set(topic.writers), topic.name
        assert {o["component"] for o in on_topic if o["action"] == "receive"} == {
            c for c, names in readers.items() if topic.name in names}, topic.name


def test_a_record_no_process_publishes_on_a_shared_topic_is_sent_by_the_external_writer(doc):
    ops = doc["operations"]

    def names(op_id: str) -> list[str]:
        return [m["$ref"].rsplit("/", 1)[1] for m in ops[op_id]["messages"]]

    assert names("external.send.opengym.reservation.commands") == ["ScheduleClassRequested", "BookClassRequested"]
    assert names("reservation.send.opengym.reservation.commands") == ["ClockTicked"]
    assert names("external.send.opengym.entitlement.requests") == ["InstrumentGrantRequested"]
    assert "reservation.send.opengym.entitlement.requests" not in ops, "its requests are the nested pairs' operations"


def test_contract_references_are_relative_to_where_the_document_lives(tmp_path):
    contracts = load_contracts()
    topic = topics.Topic("x.events", "reservation", ("opengym.reservation.BookClassRequested",), kind="events")
    here = document([topic], Catalog(transactions=()), contracts, {}, Info("t", "1"), REPO_ROOT / "docs" / "asyncapi")
    assert here["components"]["schemas"]["BookClassRequested"]["schema"] == {
        "$ref": "../../schemas/reservation/BookClassRequested.avsc"}
    other = Contracts(shutil.copytree(REPO_ROOT / "schemas", tmp_path / "s"))
    there = document([topic], Catalog(transactions=()), other, {}, Info("t", "1"), tmp_path / "doc")
    assert there["components"]["schemas"]["BookClassRequested"]["schema"] == {
        "$ref": "../s/reservation/BookClassRequested.avsc"}


def test_a_reader_of_a_topic_the_catalog_does_not_declare_is_refused():
    with pytest.raises(ValueError, match="finance reads opengym.finance.secret"):
        document(topics.ALL_TOPICS, default_catalog(), load_contracts(), {"finance": {"opengym.finance.secret"}},
                 Info("t", "1"), ASYNCAPI_PATH.parent)
