"""The compatibility table against the real registry, and `opengym schemas register | check` end to end.

Each table case registers its old version(s) under a fresh subject, then for every level sets the
subject's level and asks the registry's own compatibility endpoint about the new schema; the registry
must agree with our offline verdict (which tests/unit/test_compat_table.py holds to the Avro spec).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.compat import Level
from streams.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "unit"))
from test_compat_table import CASE_IDS, CASES, verdict  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OPENGYM = [sys.executable, "-m", "streams.cli"]


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
