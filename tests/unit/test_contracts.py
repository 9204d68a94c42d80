"""The .avsc files are the source of truth; the models are derived and must not drift."""

import json

import pytest

from opengym_streams import modelgen
from opengym_streams.contracts import ENVELOPE, ContractError, Contracts, load_avsc, load_contracts
from opengym.topics import ALL_TOPICS


def test_generated_models_match_the_avsc_files():
    for path, source in modelgen.generate(write=False).items():
        assert path.read_text() == source, f"{path} drifted from its contracts: run `opengym contracts generate`"


def test_every_contract_starts_with_the_envelope():
    for contract in load_contracts():
        assert contract.field_names[: len(ENVELOPE)] == ENVELOPE, contract.path


def test_every_event_on_a_topic_has_a_contract():
    contracts = load_contracts()
    for topic in ALL_TOPICS:
        for name in topic.events:
            assert name in contracts.by_full_name, f"{topic.name} carries {name}, which has no .avsc"


def test_the_brief_minimum_payloads_are_in_the_contracts():
    contracts = load_contracts()
    assert {"booking_id", "member_id", "class_id"} <= set(contracts.get("BookClassRequested").field_names)
    assert {"booking_id", "member_id", "class_id"} <= set(contracts.get("ReservationConfirmed").field_names)
    assert {"booking_id", "member_id", "class_id", "reason"} <= set(
        contracts.get("ReservationRejected").field_names)
    reason = next(f for f in contracts.get("ReservationRejected").schema["fields"] if f["name"] == "reason")
    assert reason["type"]["type"] == "enum"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not valid JSON"),
        ('{"type": "record", "fields": []}', "has no name"),
        ('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "strang"}]}', "not a valid Avro schema"),
        ('["null", "string"]', "top level must be an Avro record"),
    ],
)
def test_a_malformed_avsc_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "Broken.avsc"
    path.write_text(content)
    with pytest.raises(ContractError) as excinfo:
        load_avsc(path)
    assert str(path) in str(excinfo.value)
    assert problem in str(excinfo.value)


def test_a_contract_without_the_envelope_is_refused(tmp_path):
    owner = tmp_path / "reservation"
    owner.mkdir()
    (owner / "Bare.avsc").write_text(json.dumps({
        "type": "record", "name": "Bare", "namespace": "opengym.reservation",
        "fields": [{"name": "booking_id", "type": "string"}],
    }))
    with pytest.raises(ContractError, match="envelope"):
        Contracts(tmp_path)


def test_a_contract_in_the_wrong_namespace_is_refused(tmp_path):
    owner = tmp_path / "finance"
    owner.mkdir()
    schema = json.loads((load_contracts().get("PaymentSettled").path).read_text())
    schema["namespace"] = "opengym.billing"
    (owner / "PaymentSettled.avsc").write_text(json.dumps(schema))
    with pytest.raises(ContractError, match="expected 'opengym.finance'"):
        Contracts(tmp_path)
