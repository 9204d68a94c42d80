"""The compatibility table against the real registry, and `opengym schemas register | check` end to end.

Each table case registers its old version(s) under a fresh subject, then for every level sets the
subject's level and asks the registry's own compatibility endpoint about the new schema; the registry
must agree with our offline verdict (which tests/unit/test_compat_table.py holds to the Avro spec).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from opengym_streams.compat import Level
from opengym_streams.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
from test_compat_table import CASE_IDS, CASES, verdict  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry(stack) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": get_settings().registry_url})


def registry_says(registry: SchemaRegistryClient, subject: str, new: dict, level: Level) -> bool:
    """The registry's verdict at ``level``: a plain level asks about the latest version, a transitive one
    about all of them (Apicurio's all-versions endpoint checks every version even at a plain level)."""
    registry.set_compatibility(subject, level.value)
    schema = Schema(json.dumps(new), "AVRO")
    if level.transitive:
        return registry.test_compatibility_all_versions(subject, schema)
    return registry.test_compatibility(subject, schema, "latest")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_registry_agrees_with_the_offline_verdict(registry, unique, case):
    subject = unique("compat-table")
    for index, schema in enumerate(case.history):
        registry.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        if index == 0:  # Apicurio refuses NONE for a subject that does not exist yet (docs/notes/schemas.md)
            registry.set_compatibility(subject, Level.NONE.value)
    disagreements = []
    for level in Level:
        offline = verdict(case, level)
        online = registry_says(registry, subject, case.new, level)
        if online != offline.compatible:
            disagreements.append(f"{level.value}: registry {'OK' if online else 'INCOMPATIBLE'}, "
                                 f"offline {'OK' if offline.compatible else 'INCOMPATIBLE: ' + offline.reason}")
    assert not disagreements, f"{case.name}: " + " | ".join(disagreements)


def test_apicurio_all_versions_endpoint_checks_every_version_even_at_a_plain_level(registry, unique):
    """Documented quirk (docs/notes/schemas.md): Confluent's POST /compatibility/subjects/{s}/versions
    compares with the latest version only at BACKWARD; Apicurio 3.0.9 compares with every version, while
    its registration at BACKWARD compares with the latest only (so the endpoint refuses what a register
    then accepts). `opengym schemas check` therefore asks /versions/latest for plain levels."""
    case = next(c for c in CASES if c.name == "required field added after its defaulted version")
    subject = unique("compat-quirk")
    for index, schema in enumerate(case.history):
        registry.register_schema(subject, Schema(json.dumps(schema), "AVRO"))
        if index == 0:
            registry.set_compatibility(subject, Level.NONE.value)
    registry.set_compatibility(subject, Level.BACKWARD.value)
    new = Schema(json.dumps(case.new), "AVRO")
    assert verdict(case, Level.BACKWARD).compatible
    assert registry.test_compatibility(subject, new, "latest") is True
    assert registry.test_compatibility_all_versions(subject, new) is False
    assert registry.register_schema(subject, new) > 0


# ------------------------------------------------------------------------- opengym schemas register | check

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`opengym schemas <argv>` in this process, with only the schemas group registered."""
    import argparse

    from opengym_streams.commands import schemas as schemas_command

    parser = argparse.ArgumentParser(prog="opengym")
    schemas_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["schemas", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def lines_for(out: str, record: str) -> list[str]:
    return [line for line in out.splitlines() if line.split()[1:2] and line.split()[1].endswith("-" + record)]


@pytest.fixture
def subject_prefix(stack, monkeypatch, unique) -> str:
    """A topic prefix of our own, so the subjects this test registers are its alone."""
    prefix = unique("schemas") + "."
    monkeypatch.setenv("OPENGYM_TOPIC_PREFIX", prefix)
    return prefix


@pytest.fixture
def schemas_copy(tmp_path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", target)
    return target


def edit_contract(schemas_dir: Path, relative: str, change) -> None:
    path = schemas_dir / relative
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def is_registered(registry: SchemaRegistryClient, subject: str) -> bool:
    """Asked per subject: Apicurio's GET /subjects lists at most 1000 (docs/notes/schemas.md)."""
    try:
        return bool(registry.get_versions(subject))
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return False
        raise


def catalog_subjects() -> list:
    from opengym_streams.commands.schemas import subjects_of
    from opengym_streams.contracts import load_contracts

    return subjects_of(load_contracts())[0]


def test_register_puts_every_contract_under_its_subjects_with_the_configured_level(
        registry, subject_prefix, tmp_path, capsys):
    config = tmp_path / "levels.json"
    config.write_text(json.dumps({"default": "FULL_TRANSITIVE", "overrides": {
        "opengym.reservation.events-opengym.reservation.ReservationRejected": "BACKWARD",
        "opengym.streams.DeadLetter": "FORWARD_TRANSITIVE",
        "opengym.finance.events-opengym.finance.PaymentFailed": "NONE",
    }}))
    code, out, err = run_cli(capsys, "register", "--config", str(config))
    assert code == 0, err

    subjects = catalog_subjects()
    assert all(s.name.startswith(subject_prefix) for s in subjects)
    assert [s.name for s in subjects if not is_registered(registry, s.name)] == []
    clock_subjects = [s.name for s in subjects if s.contract.name == "ClockTicked"]
    assert len(clock_subjects) > 1, "ClockTicked travels on several topics, one subject each"
    expected = {s.name: "FULL_TRANSITIVE" for s in subjects}
    expected.update({s.name: "FORWARD_TRANSITIVE" for s in subjects if s.contract.name == "DeadLetter"})
    expected[f"{subject_prefix}opengym.reservation.events-opengym.reservation.ReservationRejected"] = "BACKWARD"
    expected[f"{subject_prefix}opengym.finance.events-opengym.finance.PaymentFailed"] = "NONE"
    assert {name: registry.get_compatibility(name) for name in expected} == expected

    code, out, err = run_cli(capsys, "register", "--config", str(config))
    assert code == 0 and "version 1," in out and "version 2" not in out, "registering again changes nothing"


@pytest.mark.parametrize("breakage, problem", [
    (lambda path: path.write_text(path.read_text()[:-20]), "not valid JSON"),
    (lambda path: path.write_text(path.read_text().replace('"type": "string"', '"type": "strnig"', 1)),
     "strnig"),
    (lambda path: path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items()
                                              if k != "name"})), "the record has no name"),
    (lambda path: path.write_text(path.read_text().replace('"name": "booking_id"', '"name": "booking-id"')),
     "field name 'booking-id' is not a valid Avro name"),
    (lambda path: path.write_text(path.read_text().replace('"name": "member_id"', '"name": "booking_id"')),
     "booking_id"),
], ids=["bad-json", "unknown-type", "missing-name", "invalid-field-name", "duplicate-field"])
def test_malformed_contract_is_named_and_nothing_is_registered(
        registry, subject_prefix, schemas_copy, capsys, breakage, problem):
    broken = schemas_copy / "reservation" / "ReservationRejected.avsc"
    breakage(broken)
    code, out, err = run_cli(capsys, "register", "--schemas", str(schemas_copy))
    assert code == 1
    assert str(broken) in err and problem in err and "nothing was registered" in err, err
    assert len(err.strip().splitlines()) == 1, f"one clear error, got: {err}"
    assert [s.name for s in catalog_subjects() if is_registered(registry, s.name)] == []


def test_check_against_the_registry_reports_ok_and_incompatible_and_register_refuses(
        registry, subject_prefix, schemas_copy, capsys):
    assert run_cli(capsys, "register")[0] == 0
    code, out, err = run_cli(capsys, "check")
    assert code == 0 and "0 INCOMPATIBLE" in out and "0 DISAGREE" in out, out + err

    registry.set_compatibility(f"{subject_prefix}opengym.finance.events-opengym.finance.PaymentSettled", "BACKWARD")
    code, out, err = run_cli(capsys, "check")
    [settled] = lines_for(out, "opengym.finance.PaymentSettled")
    assert code == 0 and "the registry enforces BACKWARD but" in settled and "says FULL_TRANSITIVE" in settled

    edit_contract(schemas_copy, "finance/PaymentFailed.avsc", lambda s: s["fields"].append(
        {"name": "retry_after", "type": ["null", "long"], "default": None}))
    edit_contract(schemas_copy, "reservation/ReservationRejected.avsc", lambda s: s["fields"].append(
        {"name": "seats_left", "type": "int"}))
    code, out, err = run_cli(capsys, "check", "--schemas", str(schemas_copy))
    assert code == 1, out + err
    [rejected] = lines_for(out, "opengym.reservation.ReservationRejected")
    assert rejected.startswith("INCOMPATIBLE") and "field 'seats_left' (int) has no default" in rejected
    [failed] = lines_for(out, "opengym.finance.PaymentFailed")
    assert failed.startswith("OK")
    assert "1 INCOMPATIBLE" in out and "0 DISAGREE" in out

    code, out, err = run_cli(capsys, "register", "--schemas", str(schemas_copy))
    assert code == 1 and "nothing was registered" in err
    assert registry.get_versions(f"{subject_prefix}opengym.finance.events-opengym.finance.PaymentFailed") == [1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.com",
                           *args], check=True, capture_output=True, text=True).stdout


def test_check_against_a_git_ref_sees_every_version_in_its_history(tmp_path, capsys):
    repo = tmp_path / "repo"
    schemas = repo / "schemas"
    for relative in ("finance/PaymentFailed.avsc", "reservation/ReservationRejected.avsc"):
        (schemas / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "schemas" / relative, schemas / relative)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first contracts")
    edit_contract(schemas, "finance/PaymentFailed.avsc", lambda s: s["fields"].append(
        {"name": "retry_after", "type": "long", "default": 0}))
    git(repo, "commit", "-q", "-am", "PaymentFailed gains retry_after, defaulted")

    code, out, err = run_cli(capsys, "check", "--schemas", str(schemas), "--against", "HEAD")
    assert code == 0, out + err
    [failed] = lines_for(out, "opengym.finance.PaymentFailed")
    assert failed.startswith("OK") and "against 2 version(s) in HEAD" in failed

    # retry_after loses its default: fine against the latest version alone, not against the first one,
    # which does not write retry_after
    edit_contract(schemas, "finance/PaymentFailed.avsc", lambda s: s["fields"][-1].pop("default"))
    shutil.copy(REPO / "schemas" / "finance" / "PaymentSettled.avsc", schemas / "finance" / "PaymentSettled.avsc")
    code, out, err = run_cli(capsys, "check", "--schemas", str(schemas), "--against", "HEAD")
    assert code == 1, out + err
    [failed] = lines_for(out, "opengym.finance.PaymentFailed")
    assert failed.startswith("INCOMPATIBLE") and "(FULL_TRANSITIVE)" in failed, failed
    assert "field 'retry_after' (long) has no default and version 1 (" in failed, failed
    assert "version 2 (" not in failed, "the latest version alone is compatible"
    [settled] = lines_for(out, "opengym.finance.PaymentSettled")
    assert settled.startswith("OK") and "new: no history in HEAD" in settled
    [rejected] = lines_for(out, "opengym.reservation.ReservationRejected")
    assert rejected.startswith("OK")
    assert "1 INCOMPATIBLE" in out

    config = schemas / "compatibility.json"
    config.write_text(json.dumps({"default": "FULL_TRANSITIVE",
                                  "overrides": {"opengym.finance.PaymentFailed": "FULL"}}))
    code, out, err = run_cli(capsys, "check", "--schemas", str(schemas), "--against", "HEAD")
    assert code == 0 and "0 INCOMPATIBLE" in out, out + err
    [failed] = lines_for(out, "opengym.finance.PaymentFailed")
    assert failed.startswith("OK") and "(FULL, against 1 version(s) in HEAD)" in failed, failed

    code, out, err = run_cli(capsys, "check", "--schemas", str(schemas), "--against", "no-such-ref")
    assert code == 1 and "no-such-ref" in err


def test_check_reports_a_disagreement_between_the_registry_and_our_rules(
        registry, subject_prefix, schemas_copy, capsys, monkeypatch):
    """Our rules are replaced by a stand-in that wrongly refuses one subject, to see the report
    path: the registry (real) says OK, so the line must say DISAGREE and the exit code be 1."""
    from opengym_streams import compat
    from opengym_streams.commands import schemas as schemas_command

    assert run_cli(capsys, "register")[0] == 0
    real_check = compat.check

    def wrongly_refusing(new, registered, level):
        verdict = real_check(new, registered, level)
        if new.schema.name != "PaymentSettled":
            return verdict
        problem = compat.Problem(new.label, registered[-1].label, "type_mismatch", "/fields/0/type", "stand-in")
        return compat.Verdict(level, (problem,), verdict.compared)

    monkeypatch.setattr(schemas_command.compat, "check", wrongly_refusing)
    code, out, err = run_cli(capsys, "check")
    assert code == 1, out + err
    [settled] = lines_for(out, "opengym.finance.PaymentSettled")
    assert settled.startswith("DISAGREE") and "the registry says OK, our rules say INCOMPATIBLE" in settled
    assert "1 DISAGREE" in out and "0 INCOMPATIBLE" in out


def test_ci_gate_passes_a_first_commit_and_an_additive_change_and_fails_a_breaking_one(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "gate", repo / ".ci" / "gate")
    (repo / "schemas" / "finance").mkdir(parents=True)
    shutil.copy(REPO / "schemas" / "finance" / "PaymentFailed.avsc", repo / "schemas" / "finance")
    env = {**os.environ, "OPENGYM": str(Path(sys.executable).with_name("opengym"))}

    def gate() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(repo / ".ci" / "gate")], capture_output=True, text=True, env=env)

    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    first = gate()
    assert first.returncode == 0 and "nothing to compare against" in first.stdout, first.stdout + first.stderr

    edit_contract(repo / "schemas", "finance/PaymentFailed.avsc", lambda s: s["fields"].append(
        {"name": "retry_after", "type": ["null", "long"], "default": None}))
    git(repo, "commit", "-q", "-am", "additive")
    additive = gate()
    assert additive.returncode == 0 and "1 OK (0 new), 0 INCOMPATIBLE" in additive.stdout, additive.stdout

    edit_contract(repo / "schemas", "finance/PaymentFailed.avsc", lambda s: s["fields"].pop(4))
    git(repo, "commit", "-q", "-am", "breaking: a payload field without a default removed")
    breaking = gate()
    assert breaking.returncode == 1, breaking.stdout + breaking.stderr
    assert breaking.stdout.startswith("INCOMPATIBLE") and "has no default and the working tree does not write it" \
        in breaking.stdout, breaking.stdout
