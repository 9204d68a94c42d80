"""The event contracts: every ``<schemas dir>/<owner>/<Event>.avsc``, loaded once and indexed by name.

Two trees make a system's contracts: the library's own (``streams/schemas``: ClockTicked, DeadLetter,
AnomalyDetected) and the system's (its ``schemas`` directory). In each, a record's namespace is the
tree's namespace plus its owner directory (``opengym.reservation`` for ``schemas/reservation/``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro


ENVELOPE = ("event_id", "correlation_id", "causation_id", "occurred_at")


class ContractError(ValueError):
    """A malformed .avsc: names the file and the problem."""


def strip_logical_types(schema: Any) -> Any:
    """The same schema without logicalType annotations.

    The binary encoding is identical; decoding with it keeps timestamps as epoch-millis ints instead
    of datetimes, which is what the models and the handlers use.
    """
    if isinstance(schema, dict):
        return {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical_types(s) for s in schema]
    return schema


@dataclass(frozen=True)
class Contract:
    name: str
    namespace: str
    owner: str
    path: Path
    schema: dict = field(repr=False, compare=False)
    parsed: Any = field(repr=False, compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def schema_str(self) -> str:
        return json.dumps(self.schema, separators=(",", ":"))

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f["name"] for f in self.schema["fields"])


def load_avsc(path: Path) -> dict:
    """Read and validate one .avsc; any problem is a ContractError naming the file."""
    try:
        schema = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except OSError as exc:
        raise ContractError(f"{path}: cannot be read: {exc.strerror}")
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ContractError(f"{path}: the top level must be an Avro record")
    if not schema.get("name"):
        raise ContractError(f"{path}: the record has no name")
    try:
        fastavro.parse_schema(copy.deepcopy(schema), _write_hint=False)
    except Exception as exc:  # fastavro raises several types (SchemaParseException, UnknownType, ...)
        raise ContractError(f"{path}: not a valid Avro schema: {type(exc).__name__}: {exc}")
    return schema


LIBRARY_SCHEMAS = Path(__file__).resolve().parent / "schemas"
"""The library's own contracts (namespace ``opengym``)."""
LIBRARY_NAMESPACE = "opengym"


class Contracts:
    """All contracts under one or more schemas directories, each with its namespace."""

    def __init__(self, root: Path, namespace: str = LIBRARY_NAMESPACE, *more: tuple[Path, str]):
        self.root = root
        self.roots: tuple[tuple[Path, str], ...] = ((root, namespace), *more)
        self.by_full_name: dict[str, Contract] = {}
        self.by_name: dict[str, Contract] = {}
        for tree, prefix in self.roots:
            self._load(tree, prefix)

    def _load(self, root: Path, prefix: str) -> None:
        for path in sorted(root.glob("*/*.avsc")):
            schema = load_avsc(path)
            owner = path.parent.name
            namespace = schema.get("namespace", "")
            expected_ns = f"{prefix}." + owner.replace("-", "_")
            if namespace != expected_ns:
                raise ContractError(f"{path}: namespace is {namespace!r}, expected {expected_ns!r}")
            if path.stem != schema["name"]:
                raise ContractError(f"{path}: file name and record name {schema['name']!r} differ")
            names = [f["name"] for f in schema.get("fields", [])]
            if tuple(names[: len(ENVELOPE)]) != ENVELOPE:
                raise ContractError(f"{path}: must start with the envelope fields {', '.join(ENVELOPE)}")
            parsed = fastavro.parse_schema(strip_logical_types(copy.deepcopy(schema)), _write_hint=False)
            contract = Contract(schema["name"], namespace, owner, path, schema, parsed)
            if contract.name in self.by_name:
                raise ContractError(f"{path}: record name {contract.name} is also used by "
                                    f"{self.by_name[contract.name].path}")
            self.by_full_name[contract.full_name] = contract
            self.by_name[contract.name] = contract

    def get(self, name: str) -> Contract:
        """By full name (``opengym.reservation.BookClassRequested``) or short name."""
        contract = self.by_full_name.get(name) or self.by_name.get(name)
        if contract is None:
            raise KeyError(name)
        return contract

    def __iter__(self):
        return iter(self.by_full_name.values())

    def __len__(self) -> int:
        return len(self.by_full_name)


    def of_tree(self, root: Path) -> list[Contract]:
        """The contracts that live under one of the trees."""
        root = root.resolve()
        return [c for c in self if c.path.resolve().is_relative_to(root)]


def load_contracts(system=None, root: Path | None = None) -> Contracts:
    """The library's contracts plus the system's (the configured one unless given), or ``root``'s tree
    in place of the system's."""
    if root is not None:
        return _load_contracts(str(Path(root).resolve()), LIBRARY_NAMESPACE)
    import opengym_streams.models  # noqa: F401 (the library's own records: DeadLetter, AnomalyDetected, ...)
    from opengym_streams.system import import_models, load

    if system is None:
        system = load()
    import_models(system)  # a record decodes into its model: the system's models must be loaded
    return _load_contracts(str(Path(system.schemas).resolve()), system.namespace)


@lru_cache(maxsize=8)
def _load_contracts(root: str, namespace: str) -> Contracts:
    return Contracts(LIBRARY_SCHEMAS, LIBRARY_NAMESPACE, (Path(root), namespace))
