"""The words of a verdict: which field, which type, what is missing; and `opengym schemas compat`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from opengym_streams.commands import schemas as schemas_command
from opengym_streams.compat import Level, Version, check, load_config, parse

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    """`opengym <argv>` with only the schemas group registered (other groups are not under test)."""
    parser = argparse.ArgumentParser(prog="opengym")
    schemas_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def rec(*fields, name="Booking", namespace="gym"):
    return {"type": "record", "name": name, "namespace": namespace, "fields": list(fields)}


def reason(old: dict, new: dict, level: Level) -> str:
    verdict = check(Version("the new schema", parse(new)), [Version("version 1", parse(old))], level)
    assert not verdict.compatible
    return verdict.reason


def test_added_required_field_names_the_field_its_type_and_the_version_lacking_it():
    old = rec({"name": "id", "type": "string"})
    new = rec({"name": "id", "type": "string"}, {"name": "seats", "type": "int"})
    assert reason(old, new, Level.BACKWARD) == (
        "the new schema cannot read data written with version 1: "
        "field 'seats' (int) has no default and version 1 does not write it")


def test_removed_enum_symbol_names_the_symbol_and_the_missing_enum_default():
    status = {"type": "enum", "name": "Status", "symbols": ["OPEN", "FULL", "CANCELLED"]}
    old = rec({"name": "status", "type": status})
    new = rec({"name": "status", "type": {**status, "symbols": ["OPEN", "FULL"]}})
    assert reason(old, new, Level.BACKWARD) == (
        "the new schema cannot read data written with version 1: field 'status' (enum gym.Status) "
        "lacks symbol(s) CANCELLED that version 1 can write, and has no enum default in the new schema")


def test_narrowed_nested_type_names_the_dotted_path_and_both_types():
    old = rec({"name": "place", "type": rec({"name": "capacity", "type": "long"}, name="Place")})
    new = rec({"name": "place", "type": rec({"name": "capacity", "type": "int"}, name="Place")})
    assert reason(old, new, Level.BACKWARD) == (
        "the new schema cannot read data written with version 1: field 'place.capacity' is int in the new "
        "schema but long in version 1, and long cannot be read as int")


def test_forward_problems_say_the_old_version_is_the_reader():
    old = rec({"name": "tags", "type": ["null", "string"]})
    new = rec({"name": "tags", "type": ["null", "string", {"type": "array", "items": "string"}]})
    assert reason(old, new, Level.FULL) == (
        "version 1 cannot read data written with the new schema: field 'tags': the new schema can write "
        "array, which union[null, string] in version 1 does not accept")


def test_several_problems_in_one_change_are_all_listed_once_per_direction():
    old = rec({"name": "id", "type": "string"}, {"name": "count", "type": "long"})
    new = rec({"name": "id", "type": "int"}, {"name": "count", "type": "int"}, {"name": "extra", "type": "string"})
    text = reason(old, new, Level.BACKWARD)
    assert text.count("cannot read data written with") == 1
    for words in ("field 'id' is int", "field 'count' is int", "field 'extra' (string) has no default"):
        assert words in text


def test_problems_inside_nested_records_and_array_items_each_name_their_own_field():
    old = rec({"name": "place", "type": rec({"name": "zip", "type": "int"}, {"name": "seats", "type": "long"},
                                            name="Place")},
              {"name": "lines", "type": {"type": "array", "items": rec({"name": "qty", "type": "int"}, name="Line")}})
    new = rec({"name": "place", "type": rec({"name": "zip", "type": "string"}, {"name": "seats", "type": "int"},
                                            {"name": "floor", "type": "int"}, name="Place")},
              {"name": "lines", "type": {"type": "array", "items": rec({"name": "qty", "type": "string"},
                                                                       name="Line")}})
    text = reason(old, new, Level.BACKWARD)
    for words in ("field 'place.zip' is string", "field 'place.seats' is int", "field 'place.floor' (int) has no default",
                  "field 'lines[].qty' is string"):
        assert words in text, text


def test_recursive_record_types_are_explained_without_looping():
    node = {"type": "record", "name": "Node", "namespace": "gym", "fields": [
        {"name": "value", "type": "int"}, {"name": "children", "type": {"type": "array", "items": "Node"}}]}
    changed = {**node, "fields": [{"name": "value", "type": "string"}, node["fields"][1]]}
    assert "field 'value' is string" in reason(node, changed, Level.BACKWARD)


def test_transitive_level_names_the_old_version_that_breaks():
    v1 = rec({"name": "id", "type": "string"})
    v2 = rec({"name": "id", "type": "string"}, {"name": "note", "type": "string", "default": ""})
    new = rec({"name": "id", "type": "string"}, {"name": "note", "type": "string"})
    history = [Version("version 1", parse(v1)), Version("version 2", parse(v2))]
    assert check(Version("new", parse(new)), history, Level.BACKWARD).compatible
    verdict = check(Version("new", parse(new)), history, Level.BACKWARD_TRANSITIVE)
    assert verdict.compared == ("version 1", "version 2")
    assert verdict.reason == "new cannot read data written with version 1: field 'note' (string) has no default and version 1 does not write it"


def test_level_names_parse_case_insensitively_and_unknown_levels_are_refused():
    assert Level.parse("full_transitive") is Level.FULL_TRANSITIVE
    with pytest.raises(ValueError, match="unknown compatibility level 'SIDEWAYS'"):
        Level.parse("SIDEWAYS")


def test_project_config_defaults_to_a_transitive_level_with_overrides(tmp_path):
    config = load_config(REPO / "schemas" / "compatibility.json")
    assert config.default.transitive
    custom = tmp_path / "levels.json"
    custom.write_text(json.dumps({"default": "BACKWARD_TRANSITIVE", "overrides": {
        "t.events-gym.Booking": "FULL", "gym.Tick": "NONE"}}))
    levels = load_config(custom)
    assert levels.level_for("t.events-gym.Booking", "gym.Booking") is Level.FULL
    assert levels.level_for("t.clock-gym.Tick", "gym.Tick") is Level.NONE
    assert levels.level_for("t.events-gym.Other", "gym.Other") is Level.BACKWARD_TRANSITIVE


# ------------------------------------------------------------------------------ opengym schemas compat

def write(tmp_path: Path, name: str, schema) -> str:
    path = tmp_path / name
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return str(path)


def test_compat_command_prints_ok_and_exits_zero_for_an_additive_change(tmp_path, capsys):
    old = write(tmp_path, "old.avsc", rec({"name": "id", "type": "string"}))
    new = write(tmp_path, "new.avsc", rec({"name": "id", "type": "string"},
                                          {"name": "note", "type": ["null", "string"], "default": None}))
    assert main(["schemas", "compat", old, new, "--level", "FULL_TRANSITIVE"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK") and "(FULL_TRANSITIVE, against" in out


def test_compat_command_prints_the_reason_and_exits_one_for_a_breaking_change(tmp_path, capsys):
    old = write(tmp_path, "old.avsc", rec({"name": "id", "type": "string"}, {"name": "n", "type": "int"}))
    new = write(tmp_path, "new.avsc", rec({"name": "id", "type": "string"}))
    assert main(["schemas", "compat", old, new, "--level", "backward"]) == 0
    capsys.readouterr()
    assert main(["schemas", "compat", old, new, "--level", "FORWARD"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INCOMPATIBLE") and "(FORWARD)" in out
    assert "the old schema cannot read data written with the new schema: field 'n' (int) has no default" in out


@pytest.mark.parametrize("content, problem", [
    ('{"type": "record", "name": "X", "fields": [', "not valid JSON"),
    (json.dumps(rec({"name": "when", "type": "datetime"})), "datetime"),
    (json.dumps({"type": "record", "fields": []}), "the record has no name"),
    (json.dumps(rec({"name": "1st-visit", "type": "string"})), "field name '1st-visit' is not a valid Avro name"),
], ids=["bad-json", "unknown-type", "missing-name", "invalid-field-name"])
def test_compat_command_names_a_malformed_file_and_its_problem(tmp_path, capsys, content, problem):
    good = write(tmp_path, "good.avsc", rec({"name": "id", "type": "string"}))
    bad = write(tmp_path, "bad.avsc", content)
    assert main(["schemas", "compat", good, bad]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and bad in err and problem in err, err
