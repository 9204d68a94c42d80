"""Derive pydantic models from the .avsc contracts: the library's into ``streams/models.py``, a system's into
the file its declaration names (``System.models``).

The models are generated, never edited: ``opengym contracts generate`` rewrites them and
``tests/unit/test_contracts.py`` fails when a committed file differs from what this produces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from opengym_streams.contracts import LIBRARY_SCHEMAS, Contract, load_contracts

MODELS_PATH = Path(__file__).resolve().parent / "models.py"

_PRIMITIVES = {
    "string": "StrictStr",
    "int": "StrictInt",
    "long": "StrictInt",
    "boolean": "StrictBool",
    "float": "float",
    "double": "float",
    "bytes": "bytes",
}


class _Gen:
    def __init__(self) -> None:
        self.enums: dict[str, tuple[str, ...]] = {}

    def type_of(self, avro_type, where: str) -> str:
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES:
                return _PRIMITIVES[avro_type]
            short = avro_type.rsplit(".", 1)[-1]
            if short in self.enums:
                return short
            raise ValueError(f"{where}: named type {avro_type} is not supported by the model generator")
        if isinstance(avro_type, list):
            members = [m for m in avro_type if m != "null"]
            inner = " | ".join(self.type_of(m, where) for m in members)
            return f"{inner} | None" if "null" in avro_type else inner
        kind = avro_type["type"]
        if kind == "enum":
            name, symbols = avro_type["name"], tuple(avro_type["symbols"])
            if self.enums.setdefault(name, symbols) != symbols:
                raise ValueError(f"{where}: enum {name} is declared with different symbols elsewhere")
            return name
        if kind == "array":
            return f"list[{self.type_of(avro_type['items'], where)}]"
        if kind == "map":
            return f"dict[str, {self.type_of(avro_type['values'], where)}]"
        if kind in _PRIMITIVES:
            return _PRIMITIVES[kind]
        raise ValueError(f"{where}: type {kind} is not supported by the model generator")


def render(contracts: Iterable[Contract], source: str = "streams/schemas") -> str:
    contracts = list(contracts)
    gen = _Gen()
    classes: list[str] = []
    for contract in sorted(contracts, key=lambda c: (c.owner, c.name)):
        lines = [
            "",
            "",
            "",
            f"class {contract.name}(Event):",
            f'    """{contract.schema.get("doc", contract.name)}"""',
            "",
            f'    avro_name: ClassVar[str] = "{contract.full_name}"',
            f'    owner: ClassVar[str] = "{contract.owner}"',
        ]
        for fld in contract.schema["fields"][4:]:
            annotation = gen.type_of(fld["type"], f"{contract.path}:{fld['name']}")
            default = ""
            if "default" in fld:
                default = f" = {fld['default']!r}"
            lines.append(f"    {fld['name']}: {annotation}{default}")
        classes.append("\n".join(lines))
    enum_blocks = []
    for name, symbols in sorted(gen.enums.items()):
        body = "\n".join(f'    {s} = "{s}"' for s in symbols)
        enum_blocks.append(f"\n\n\nclass {name}(str, Enum):\n{body}")
    names = sorted(c.name for c in contracts)
    registry = "\n".join(f"    {n}," for n in names)
    return (
        f'"""Event models derived from {source}/**/*.avsc by streams.modelgen. DO NOT EDIT.\n\n'
        "Regenerate with `opengym contracts generate`; a unit test fails when this file drifts.\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        "from enum import Enum\n"
        "from typing import ClassVar\n\n"
        "from pydantic import StrictBool, StrictInt, StrictStr\n\n"
        "from opengym_streams.event import Event"
        + "".join(enum_blocks)
        + "".join(classes)
        + "\n\n\nALL_EVENTS: tuple[type[Event], ...] = (\n"
        + registry
        + "\n)\nBY_AVRO_NAME: dict[str, type[Event]] = {cls.avro_name: cls for cls in ALL_EVENTS}\n"
        + "BY_NAME: dict[str, type[Event]] = {cls.__name__: cls for cls in ALL_EVENTS}\n"
    )


def outputs(system=None) -> dict[Path, str]:
    """{models file: its source} for the library and the system (the configured one unless given)."""
    if system is None:
        from opengym_streams.system import load

        system = load()
    contracts = load_contracts(system)
    found = {MODELS_PATH: render(contracts.of_tree(LIBRARY_SCHEMAS), "streams/schemas")}
    if system.models is not None and system.schemas is not None:
        found[Path(system.models)] = render(contracts.of_tree(Path(system.schemas)),
                                            f"the {system.name} system's schemas")
    return found


def generate(write: bool = True, system=None) -> dict[Path, str]:
    found = outputs(system)
    if write:
        for path, source in found.items():
            path.write_text(source)
    return found
