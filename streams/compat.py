"""Schema-registry compatibility levels, decided by Avro's own reader/writer resolution rules.

The rules are ``avro.compatibility.ReaderWriterCompatibilityChecker`` (the Python port of the Java
``SchemaCompatibility`` that Apicurio and Confluent use); this module only chooses which pairs to
check for a level and turns the checker's findings into sentences a user can act on.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Sequence

import avro.errors
import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    SchemaIncompatibilityType,
    lookup_writer_field,
)

from opengym_streams.contracts import ContractError, load_avsc

DEFAULT_LEVEL_NAME = "FULL_TRANSITIVE"


class Level(str, Enum):
    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        """The new schema must read data written with the registered one(s)."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """The registered schema(s) must read data written with the new one."""
        return self.value.startswith(("FORWARD", "FULL"))

    @property
    def transitive(self) -> bool:
        return self.value.endswith("_TRANSITIVE")

    @classmethod
    def parse(cls, text: str) -> "Level":
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(f"unknown compatibility level {text!r}; levels: {', '.join(l.value for l in cls)}")


@dataclass(frozen=True)
class Version:
    """One schema with the words that name it in a verdict ("version 2", "the new schema")."""

    label: str
    schema: avro.schema.Schema


@dataclass(frozen=True)
class Problem:
    reader: str
    writer: str
    kind: str
    """The checker's SchemaIncompatibilityType name (type_mismatch, missing_enum_symbols, ...)."""
    location: str
    """The checker's JSON-pointer-like location in the reader schema (``/fields/4/type/symbols``)."""
    detail: str

    @property
    def text(self) -> str:
        return f"{self.reader} cannot read data written with {self.writer}: {self.detail}"


@dataclass(frozen=True)
class Verdict:
    level: Level
    problems: tuple[Problem, ...]
    compared: tuple[str, ...]
    """Labels of the registered versions the new schema was checked against."""

    @property
    def compatible(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        """Every problem, grouped by direction: "X cannot read data written with Y: a; b"."""
        groups: dict[tuple[str, str], list[str]] = {}
        for p in self.problems:
            groups.setdefault((p.reader, p.writer), []).append(p.detail)
        return "; ".join(f"{reader} cannot read data written with {writer}: {'; '.join(details)}"
                         for (reader, writer), details in groups.items())


# ---------------------------------------------------------------------------------------------- parsing

def _qualify_aliases(schema: Any, namespace: str | None = None) -> Any:
    """The same schema with every named type's aliases written as full names.

    The Avro spec lets an alias be relative to the type's namespace (Java resolves it so); the
    Python checker compares the alias text with the writer's full name, so we spell it out first.
    """
    if isinstance(schema, list):
        return [_qualify_aliases(s, namespace) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed") and isinstance(schema.get("name"), str):
        name = schema["name"]
        own_ns = name.rpartition(".")[0] if "." in name else schema.get("namespace", namespace)
        if isinstance(schema.get("aliases"), list):
            out["aliases"] = [a if "." in a or not own_ns else f"{own_ns}.{a}" for a in schema["aliases"]]
        namespace = own_ns
        if kind in ("record", "error"):
            out["fields"] = [
                {**f, "type": _qualify_aliases(f.get("type"), namespace)} if isinstance(f, dict) else f
                for f in schema.get("fields", [])
            ]
        return out
    if kind == "array":
        out["items"] = _qualify_aliases(schema.get("items"), namespace)
    elif kind == "map":
        out["values"] = _qualify_aliases(schema.get("values"), namespace)
    elif isinstance(kind, (dict, list)):
        out["type"] = _qualify_aliases(kind, namespace)
    return out


_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_names(schema: Any, source: str) -> None:
    """Names as the spec (and the registry's Java parser) demand; the Python parsers let some through."""
    def bad(what: str, name: Any) -> ContractError:
        return ContractError(f"{source}: {what} {name!r} is not a valid Avro name "
                             "(letters, digits and _, not starting with a digit)")

    if isinstance(schema, list):
        for branch in schema:
            _check_names(branch, source)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        name, namespace = schema.get("name"), schema.get("namespace")
        if isinstance(name, str) and not all(_AVRO_NAME.fullmatch(part) for part in name.split(".")):
            raise bad(f"{kind} name", name)
        if isinstance(namespace, str) and namespace and not all(_AVRO_NAME.fullmatch(p) for p in namespace.split(".")):
            raise bad("namespace", namespace)
    if kind in ("record", "error"):
        for field in schema.get("fields", []):
            if isinstance(field, dict):
                if isinstance(field.get("name"), str) and not _AVRO_NAME.fullmatch(field["name"]):
                    raise bad("field name", field["name"])
                _check_names(field.get("type"), source)
    elif kind == "enum":
        for symbol in schema.get("symbols", []):
            if not isinstance(symbol, str) or not _AVRO_NAME.fullmatch(symbol):
                raise bad("enum symbol", symbol)
    elif kind == "array":
        _check_names(schema.get("items"), source)
    elif kind == "map":
        _check_names(schema.get("values"), source)
    elif isinstance(kind, (dict, list)):
        _check_names(kind, source)


def parse(schema: dict | str, source: str = "schema") -> avro.schema.Schema:
    """An Avro schema (JSON text or its dict) ready for the checker; a ContractError names ``source``."""
    try:
        as_dict = json.loads(schema) if isinstance(schema, str) else copy.deepcopy(schema)
    except json.JSONDecodeError as exc:
        raise ContractError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    _check_names(as_dict, source)
    try:
        return avro.schema.parse(json.dumps(_qualify_aliases(as_dict)))
    except (avro.errors.AvroException, TypeError, ValueError, KeyError) as exc:
        raise ContractError(f"{source}: not a valid Avro schema: {exc}")


def load(path: Path | str) -> avro.schema.Schema:
    """One .avsc file, validated like a contract (ContractError naming the file) and parsed."""
    path = Path(path)
    return parse(load_avsc(path), str(path))


# --------------------------------------------------------------------------------------------- checking

def check(new: Version, registered: Sequence[Version], level: Level) -> Verdict:
    """Is ``new`` acceptable after ``registered`` (oldest first) at ``level``?

    As in the registries: a plain level compares with the latest version only, a transitive level with
    every version; BACKWARD means the new schema reads old data, FORWARD that old schemas read new data.
    """
    if level is Level.NONE or not registered:
        return Verdict(level, (), ())
    against = list(registered) if level.transitive else [registered[-1]]
    problems: list[Problem] = []
    for old in reversed(against):
        if level.backward:
            problems += check_pair(reader=new, writer=old)
        if level.forward:
            problems += check_pair(reader=old, writer=new)
    return Verdict(level, tuple(problems), tuple(v.label for v in against))


def check_pair(reader: Version, writer: Version) -> list[Problem]:
    """Every reason the reader cannot read what the writer writes (empty when it can)."""
    return _scope_problems(_Scope(reader, writer, "", frozenset({(id(reader.schema), id(writer.schema))})))


@dataclass(frozen=True)
class _Scope:
    """A reader/writer pair of (possibly nested) schemas, with the field path that leads to them."""

    reader: Version
    writer: Version
    prefix: str
    seen: frozenset
    """Pairs already being explained: recursive types must not explain themselves forever."""

    def enter(self, reader: avro.schema.Schema, writer: avro.schema.Schema, prefix: str) -> "_Scope | None":
        key = (id(reader), id(writer))
        if key in self.seen:
            return None
        return _Scope(Version(self.reader.label, reader), Version(self.writer.label, writer), prefix,
                      self.seen | {key})


def _scope_problems(scope: _Scope) -> list[Problem]:
    reader, writer = scope.reader.schema, scope.writer.schema
    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is not SchemaCompatibilityType.incompatible:
        return []
    if not (isinstance(reader, avro.schema.RecordSchema) and isinstance(writer, avro.schema.RecordSchema)):
        return _problems(scope, result, "/")
    # The checker merges sibling findings into sets that lose which message goes with which location,
    # so ask it again field by field (descending into nested records): each finding stays with its field.
    problems: list[Problem] = []
    if "/name" in result.locations and SchemaIncompatibilityType.name_mismatch in result.incompatibilities:
        problems.append(_problem(scope, SchemaIncompatibilityType.name_mismatch,
                                 _message_for(result, "expected: "), "/name"))
    for index, reader_field in enumerate(reader.fields):
        field_location = f"/fields/{index}"
        writer_field = lookup_writer_field(writer_schema=writer, reader_field=reader_field)
        if writer_field is None:
            if field_location in result.locations or f"{field_location}/type" in result.locations:
                problems.append(_problem(scope, SchemaIncompatibilityType.reader_field_missing_default_value,
                                         reader_field.name, field_location))
            continue
        field_result = ReaderWriterCompatibilityChecker().get_compatibility(
            reader_field.type, writer_field.type, "type", ["/", "fields", str(index)])
        if field_result.compatibility is not SchemaCompatibilityType.incompatible:
            continue
        reader_inner, writer_inner, suffix = _through_containers(reader_field.type, writer_field.type)
        inner = None
        if isinstance(reader_inner, avro.schema.RecordSchema) and isinstance(writer_inner, avro.schema.RecordSchema):
            inner = scope.enter(reader_inner, writer_inner, _join(scope.prefix, reader_field.name) + suffix)
        if inner is not None:
            problems += _scope_problems(inner)
        else:
            problems += _problems(scope, field_result, field_location, writer_field.type)
    return problems or _problems(scope, result, "/")


def _through_containers(reader: avro.schema.Schema, writer: avro.schema.Schema):
    """The item (value) types of an array (map) on both sides, and the path suffix that says so."""
    suffix = ""
    while True:
        if isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
            reader, writer, suffix = reader.items, writer.items, suffix + "[]"
        elif isinstance(reader, avro.schema.MapSchema) and isinstance(writer, avro.schema.MapSchema):
            reader, writer, suffix = reader.values, writer.values, suffix + "{}"
        else:
            return reader, writer, suffix


def _join(prefix: str, path: str) -> str:
    return ".".join(p for p in (prefix, path) if p)


def _message_for(result: SchemaCompatibilityResult, prefix: str) -> str:
    return next((m for m in sorted(result.messages) if m.startswith(prefix) and "found:" not in m), prefix)


def _problems(scope: _Scope, result: SchemaCompatibilityResult, field_location: str,
              writer_field_type: avro.schema.Schema | None = None) -> list[Problem]:
    kinds = list(dict.fromkeys(result.incompatibilities))
    locations = sorted(result.locations)
    if len(result.messages) == 1 and len(locations) == 1 and len(kinds) == 1:
        location = locations[0] if locations[0].startswith(field_location) else field_location
        return [_problem(scope, kinds[0], next(iter(result.messages)), location, writer_field_type)]
    return [_problem(scope, _kind_of(message, kinds), message, field_location, writer_field_type)
            for message in sorted(result.messages)]


def _kind_of(message: str, kinds: list[SchemaIncompatibilityType]) -> SchemaIncompatibilityType:
    if message.startswith("reader type:"):
        return SchemaIncompatibilityType.type_mismatch
    if message.startswith("reader union lacking"):
        return SchemaIncompatibilityType.missing_union_branch
    if message.startswith("expected: ") and "found:" in message:
        return SchemaIncompatibilityType.fixed_size_mismatch
    if message.startswith("expected: "):
        return SchemaIncompatibilityType.name_mismatch
    if message.startswith("{"):
        return SchemaIncompatibilityType.missing_enum_symbols
    return kinds[0] if len(kinds) == 1 else SchemaIncompatibilityType.reader_field_missing_default_value


# ------------------------------------------------------------------------------------------------ words

_TYPE_MISMATCH = re.compile(r"reader type: (\w+) not compatible with writer type: (\w+)")


def _problem(scope: _Scope, kind: SchemaIncompatibilityType, message: str, location: str,
             writer_field_type: avro.schema.Schema | None = None) -> Problem:
    reader, writer = scope.reader, scope.writer
    path, node = _walk(reader.schema, location)
    path = _join(scope.prefix, path)
    where = f"field '{path}'" if path else f"record {reader.schema.fullname}"
    R, W = reader.label, writer.label
    if kind is SchemaIncompatibilityType.reader_field_missing_default_value:
        if path and path.rsplit(".", 1)[-1] != message:  # the finding lies somewhere inside this field
            detail = f"field '{message}' inside {where} has no default and {W} does not write it"
        elif path:
            detail = f"{where} ({describe(node)}) has no default and {W} does not write it"
        else:
            detail = f"field '{message}' has no default and {W} does not write it"
    elif kind is SchemaIncompatibilityType.type_mismatch:
        found = _TYPE_MISMATCH.search(message)
        reader_type, writer_type = found.groups() if found else (describe(node), "another type")
        if node.type == reader_type:
            reader_type = describe(node)
        if isinstance(writer_field_type, avro.schema.UnionSchema) and location.count("/") <= 3:
            written_as = f"{describe(writer_field_type)} in {W}, whose {writer_type} branch"
        else:
            written_as = f"{writer_type} in {W}, and {writer_type}"
        detail = f"{where} is {reader_type} in {R} but {written_as} cannot be read as {reader_type}"
    elif kind is SchemaIncompatibilityType.missing_union_branch:
        branch = message.rsplit(" ", 1)[-1].lower()
        detail = f"{where}: {W} can write {branch}, which {describe(node)} in {R} does not accept"
        inner = _named_branch_problems(scope, node, writer_field_type, location, path)
        if inner:
            detail = "; ".join(p.detail for p in inner)
    elif kind is SchemaIncompatibilityType.missing_enum_symbols:
        try:
            symbols = ", ".join(sorted(ast.literal_eval(message)))
        except (ValueError, SyntaxError):
            symbols = message
        detail = (f"{where} ({describe(node)}) lacks symbol(s) {symbols} that {W} can write, "
                  f"and has no enum default in {R}")
    elif kind is SchemaIncompatibilityType.name_mismatch:
        written = message.removeprefix("expected: ")
        named = node.fullname if isinstance(node, avro.schema.NamedSchema) else reader.schema.fullname
        what = where if path else "the record"
        detail = (f"{what} is named {named} in {R} but {written} in {W}, "
                  f"and {R} declares no alias {written}")
    elif kind is SchemaIncompatibilityType.fixed_size_mismatch:
        sizes = re.findall(r"\d+", message)
        written, read = (sizes + ["?", "?"])[:2]
        detail = f"{where} is fixed({read}) in {R} but fixed({written}) in {W}"
    else:
        detail = f"{where}: {message}"
    return Problem(R, W, kind.name, location, detail)


def _named_branch_problems(scope: _Scope, reader_node: avro.schema.Schema,
                           writer_field_type: avro.schema.Schema | None, location: str,
                           path: str) -> list[Problem]:
    """Why a writer's named type (a record in a union, say) cannot be read by the reader's branch of
    the same name: the checker only says the union lacks it, which hides the field at fault."""
    last = location.rsplit("/", 1)[-1]
    writer_branch = writer_field_type
    if isinstance(writer_field_type, avro.schema.UnionSchema):
        if not last.isdigit():
            return []
        writer_branch = writer_field_type.schemas[int(last)]
    reader_branches = reader_node.schemas if isinstance(reader_node, avro.schema.UnionSchema) else [reader_node]
    if not isinstance(writer_branch, avro.schema.RecordSchema):
        return []
    for branch in reader_branches:
        if isinstance(branch, avro.schema.RecordSchema) and branch.name == writer_branch.name:
            inner = scope.enter(branch, writer_branch, path)
            return _scope_problems(inner) if inner is not None else []
    return []


def _walk(schema: avro.schema.Schema, location: str) -> tuple[str, avro.schema.Schema]:
    """The dotted field path and the reader schema node at a checker location."""
    tokens = [t for t in location.split("/") if t]
    path = ""
    node = schema
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "fields" and i + 1 < len(tokens) and isinstance(node, avro.schema.RecordSchema):
            field = node.fields[int(tokens[i + 1])]
            path = f"{path}.{field.name}" if path else field.name
            node = field.type
            i += 2
        elif token == "type":
            i += 1
        elif token == "items" and isinstance(node, avro.schema.ArraySchema):
            path += "[]"
            node = node.items
            i += 1
        elif token == "values" and isinstance(node, avro.schema.MapSchema):
            path += "{}"
            node = node.values
            i += 1
        else:
            break
    return path, node


def describe(node: avro.schema.Schema) -> str:
    """A short type name: ``int``, ``enum opengym.x.Reason``, ``array<long>``, ``union[null, string]``."""
    if isinstance(node, avro.schema.UnionSchema):
        return "union[" + ", ".join(describe(s) for s in node.schemas) + "]"
    if isinstance(node, avro.schema.ArraySchema):
        return f"array<{describe(node.items)}>"
    if isinstance(node, avro.schema.MapSchema):
        return f"map<{describe(node.values)}>"
    if isinstance(node, avro.schema.NamedSchema):
        return f"{node.type} {node.fullname}"
    return str(node.type)


# ------------------------------------------------------------------------------------------ configuration

@dataclass(frozen=True)
class LevelConfig:
    """The project's compatibility levels: a default plus overrides by subject or by record name."""

    default: Level
    overrides: dict[str, Level]
    source: str

    def level_for(self, subject: str, record: str = "") -> Level:
        """``subject`` is the unprefixed catalog subject (``<topic>-<record full name>``)."""
        return self.overrides.get(subject) or self.overrides.get(record) or self.default


def load_config(path: Path) -> LevelConfig:
    """Read ``schemas/compatibility.json``; a missing file means the project default for every subject."""
    if not path.exists():
        return LevelConfig(Level(DEFAULT_LEVEL_NAME), {}, f"{path} (missing: built-in default)")
    try:
        raw = json.loads(path.read_text())
        default = Level.parse(raw.get("default", DEFAULT_LEVEL_NAME))
        overrides = {key: Level.parse(value) for key, value in raw.get("overrides", {}).items()}
    except (json.JSONDecodeError, ValueError, AttributeError) as exc:
        raise ContractError(f"{path}: {exc}")
    return LevelConfig(default, overrides, str(path))
