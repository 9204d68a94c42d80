"""Schema evolutions and their verdict at every compatibility level, as the Avro spec decides them.

The expected verdicts below are written from the Avro specification's schema-resolution rules
(1.12, "Schema Resolution"), not from the checker's output:
- BACKWARD: the new schema (reader) reads data written with the registered one (writer);
- FORWARD: the registered schema (reader) reads data written with the new one (writer);
- FULL: both; the _TRANSITIVE levels against every registered version, the plain ones against the latest.
The same table runs against the real registry in tests/integration/test_compat_registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from opengym_streams.compat import Level, Version, check, parse

NS = "compat.test"


def rec(*fields, name="Evolving", namespace=NS, **extra) -> dict:
    return {"type": "record", "name": name, "namespace": namespace, "fields": list(fields), **extra}


def f(name: str, type_, **extra) -> dict:
    return {"name": name, "type": type_, **extra}


def enum(symbols, name="Status", **extra) -> dict:
    return {"type": "enum", "name": name, "symbols": list(symbols), **extra}


ID = f("id", "string")


@dataclass(frozen=True)
class Case:
    name: str
    history: tuple[dict, ...]
    """Registered versions, oldest first."""
    new: dict
    expected: dict[Level, bool]
    reason: str = ""
    """Words an INCOMPATIBLE verdict of this case must contain (the field or symbol at fault);
    alternatives separated by ``|`` (a rename names the new field one way and the old one the other)."""


def pair(name, old, new, backward: bool, forward: bool, reason: str = "") -> Case:
    """One registered version: transitive levels see the same single version as the plain ones."""
    return Case(name, (old,), new, {
        Level.NONE: True,
        Level.BACKWARD: backward, Level.BACKWARD_TRANSITIVE: backward,
        Level.FORWARD: forward, Level.FORWARD_TRANSITIVE: forward,
        Level.FULL: backward and forward, Level.FULL_TRANSITIVE: backward and forward,
    }, reason)


def chain(name, history, new, reason="", **verdicts: bool) -> Case:
    expected = {Level.NONE: True} | {Level(level): verdict for level, verdict in verdicts.items()}
    assert len(expected) == len(Level), f"{name}: give a verdict for every level"
    return Case(name, tuple(history), new, expected, reason)


ADDRESS = rec(f("street", "string"), name="Address")
ADDRESS_WITH_ZIP = rec(f("street", "string"), f("zip", "string"), name="Address")
ADDRESS_WITH_ZIP_DEFAULT = rec(f("street", "string"), f("zip", "string", default=""), name="Address")
ADDRESS_LONG_NUMBER = rec(f("street", "string"), f("number", "long"), name="Address")
ADDRESS_INT_NUMBER = rec(f("street", "string"), f("number", "int"), name="Address")

CASES: tuple[Case, ...] = (
    # fields added
    pair("field added with a default", rec(ID), rec(ID, f("count", "int", default=0)), True, True),
    pair("field added without a default", rec(ID), rec(ID, f("count", "int")), False, True, "count"),
    pair("nullable field added with a null default", rec(ID),
         rec(ID, f("note", ["null", "string"], default=None)), True, True),
    pair("enum field added without a field default but with an enum default", rec(ID),
         rec(ID, f("status", enum(["A", "B"], default="A"))), False, True, "status"),
    # fields removed
    pair("field with a default removed", rec(ID, f("count", "int", default=0)), rec(ID), True, True),
    pair("field without a default removed", rec(ID, f("count", "int")), rec(ID), True, False, "count"),
    # renames
    pair("field renamed without an alias", rec(ID, f("total", "int")), rec(ID, f("amount", "int")),
         False, False, "'amount'|'total'"),
    pair("field renamed with an alias", rec(ID, f("total", "int")),
         rec(ID, f("amount", "int", aliases=["total"])), True, False, "total"),
    pair("field renamed with an alias, both with defaults", rec(ID, f("total", "int", default=0)),
         rec(ID, f("amount", "int", default=0, aliases=["total"])), True, True),
    pair("record renamed without an alias", rec(ID), rec(ID, name="Renamed"), False, False, "Renamed"),
    pair("record renamed with an alias", rec(ID), rec(ID, name="Renamed", aliases=[f"{NS}.Evolving"]),
         True, False, "Renamed"),
    pair("record renamed with a relative alias", rec(ID), rec(ID, name="Renamed", aliases=["Evolving"]),
         True, False, "Renamed"),
    # promotions (spec: int -> long, float, double; long -> float, double; float -> double;
    # string <-> bytes)
    pair("int promoted to long", rec(f("n", "int")), rec(f("n", "long")), True, False, "n"),
    pair("long narrowed to int", rec(f("n", "long")), rec(f("n", "int")), False, True, "n"),
    pair("int promoted to float", rec(f("n", "int")), rec(f("n", "float")), True, False, "n"),
    pair("int promoted to double", rec(f("n", "int")), rec(f("n", "double")), True, False, "n"),
    pair("long promoted to float", rec(f("n", "long")), rec(f("n", "float")), True, False, "n"),
    pair("long promoted to double", rec(f("n", "long")), rec(f("n", "double")), True, False, "n"),
    pair("float promoted to double", rec(f("n", "float")), rec(f("n", "double")), True, False, "n"),
    pair("double narrowed to float", rec(f("n", "double")), rec(f("n", "float")), False, True, "n"),
    pair("string to bytes", rec(f("s", "string")), rec(f("s", "bytes")), True, True),
    pair("bytes to string", rec(f("s", "bytes")), rec(f("s", "string")), True, True),
    pair("int to string", rec(f("n", "int")), rec(f("n", "string")), False, False, "n"),
    pair("boolean to int", rec(f("b", "boolean")), rec(f("b", "int")), False, False, "b"),
    pair("logical type added to a long", rec(f("at", "long")),
         rec(f("at", {"type": "long", "logicalType": "timestamp-millis"})), True, True),
    # enums
    pair("enum symbol added, no enum default", rec(f("s", enum("AB"))), rec(f("s", enum("ABC"))),
         True, False, "C"),
    pair("enum symbol added, enum default on both", rec(f("s", enum("AB", default="A"))),
         rec(f("s", enum("ABC", default="A"))), True, True),
    pair("enum symbol added, enum default only on the new", rec(f("s", enum("AB"))),
         rec(f("s", enum("ABC", default="A"))), True, False, "C"),
    pair("enum symbol removed, no enum default", rec(f("s", enum("ABC"))), rec(f("s", enum("AB"))),
         False, True, "C"),
    pair("enum symbol removed, enum default on the new", rec(f("s", enum("ABC"))),
         rec(f("s", enum("AB", default="A"))), True, True),
    pair("enum renamed without an alias", rec(f("s", enum("AB"))), rec(f("s", enum("AB", name="State"))),
         False, False, "State"),
    # unions
    pair("union widened", rec(f("u", ["null", "string"])), rec(f("u", ["null", "string", "int"])),
         True, False, "int"),
    pair("union narrowed", rec(f("u", ["null", "string", "int"])), rec(f("u", ["null", "string"])),
         False, True, "int"),
    pair("field made nullable", rec(f("u", "string")), rec(f("u", ["null", "string"], default=None)),
         True, False, "null"),
    pair("nullable field made required", rec(f("u", ["null", "string"], default=None)), rec(f("u", "string")),
         False, True, "null"),
    pair("union branch promoted int to long", rec(f("u", ["null", "int"])), rec(f("u", ["null", "long"])),
         True, False, "u"),
    # nested records
    pair("nested record gains a field without a default", rec(f("address", ADDRESS)),
         rec(f("address", ADDRESS_WITH_ZIP)), False, True, "address.zip"),
    pair("nested record gains a field with a default", rec(f("address", ADDRESS)),
         rec(f("address", ADDRESS_WITH_ZIP_DEFAULT)), True, True),
    pair("nested record loses a field without a default", rec(f("address", ADDRESS_WITH_ZIP)),
         rec(f("address", ADDRESS)), True, False, "address.zip"),
    pair("nested record field narrowed long to int", rec(f("address", ADDRESS_LONG_NUMBER)),
         rec(f("address", ADDRESS_INT_NUMBER)), False, True, "address.number"),
    pair("nullable nested record gains a field without a default",
         rec(f("address", ["null", ADDRESS], default=None)),
         rec(f("address", ["null", ADDRESS_WITH_ZIP], default=None)), False, True, "address.zip"),
    # arrays and maps
    pair("array items promoted int to long", rec(f("xs", {"type": "array", "items": "int"})),
         rec(f("xs", {"type": "array", "items": "long"})), True, False, "xs[]"),
    pair("array items narrowed long to int", rec(f("xs", {"type": "array", "items": "long"})),
         rec(f("xs", {"type": "array", "items": "int"})), False, True, "xs[]"),
    pair("array of records gains a field without a default", rec(f("xs", {"type": "array", "items": ADDRESS})),
         rec(f("xs", {"type": "array", "items": ADDRESS_WITH_ZIP})), False, True, "xs[].zip"),
    pair("map values promoted int to long", rec(f("m", {"type": "map", "values": "int"})),
         rec(f("m", {"type": "map", "values": "long"})), True, False, "m{}"),
    pair("map values changed string to int", rec(f("m", {"type": "map", "values": "string"})),
         rec(f("m", {"type": "map", "values": "int"})), False, False, "m{}"),
    pair("array changed to map", rec(f("c", {"type": "array", "items": "string"})),
         rec(f("c", {"type": "map", "values": "string"})), False, False, "c"),
    # namespaces: the spec matches named types by their unqualified name
    pair("record namespace changed", rec(ID), rec(ID, namespace="compat.moved"), True, True),
    pair("nested record namespace changed", rec(f("address", ADDRESS)),
         rec(f("address", {**ADDRESS, "namespace": "compat.moved"})), True, True),
    pair("enum namespace changed", rec(f("s", enum("AB"))), rec(f("s", enum("AB", namespace="compat.moved"))),
         True, True),
    # harmless edits
    pair("fields reordered", rec(ID, f("n", "int")), rec(f("n", "int"), ID), True, True),
    pair("doc changed", rec(ID), rec(ID, doc="now documented"), True, True),
    pair("fixed size changed", rec(f("h", {"type": "fixed", "name": "Hash", "size": 16})),
         rec(f("h", {"type": "fixed", "name": "Hash", "size": 32})), False, False, "h"),
    # several registered versions: only the transitive levels look past the latest
    chain("required field added after its defaulted version",
          [rec(ID), rec(ID, f("count", "int", default=0))], rec(ID, f("count", "int")), "count",
          BACKWARD=True, BACKWARD_TRANSITIVE=False, FORWARD=True, FORWARD_TRANSITIVE=True,
          FULL=True, FULL_TRANSITIVE=False),
    chain("field removed after its default was added",
          [rec(ID, f("count", "int")), rec(ID, f("count", "int", default=0))], rec(ID), "count",
          BACKWARD=True, BACKWARD_TRANSITIVE=True, FORWARD=True, FORWARD_TRANSITIVE=False,
          FULL=True, FULL_TRANSITIVE=False),
    chain("enum symbol dropped that an older version wrote",
          [rec(f("s", enum("ABC"))), rec(f("s", enum("AB", default="A")))], rec(f("s", enum("AB"))), "C",
          BACKWARD=True, BACKWARD_TRANSITIVE=False, FORWARD=True, FORWARD_TRANSITIVE=True,
          FULL=True, FULL_TRANSITIVE=False),
    chain("additive evolution over three versions",
          [rec(ID), rec(ID, f("a", ["null", "string"], default=None))],
          rec(ID, f("a", ["null", "string"], default=None), f("b", "int", default=0)),
          BACKWARD=True, BACKWARD_TRANSITIVE=True, FORWARD=True, FORWARD_TRANSITIVE=True,
          FULL=True, FULL_TRANSITIVE=True),
)

CASE_IDS = [case.name.replace(" ", "-") for case in CASES]


def verdict(case: Case, level: Level):
    history = [Version(f"version {i}", parse(schema)) for i, schema in enumerate(case.history, 1)]
    return check(Version("the new schema", parse(case.new)), history, level)


@pytest.mark.parametrize("level", list(Level), ids=[level.value for level in Level])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_evolution_verdict_matches_the_spec(case: Case, level: Level):
    result = verdict(case, level)
    assert result.compatible == case.expected[level], (
        f"{case.name} at {level.value}: expected {'OK' if case.expected[level] else 'INCOMPATIBLE'}, "
        f"got {'OK' if result.compatible else 'INCOMPATIBLE: ' + result.reason}")
    if not result.compatible:
        assert case.reason and any(words in result.reason for words in case.reason.split("|")), result.reason


def test_every_case_exercises_both_verdicts_somewhere():
    assert any(not v for case in CASES for v in case.expected.values())
    assert len(CASES) >= 50
