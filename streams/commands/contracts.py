"""opengym contracts generate | check: the pydantic models derived from the .avsc files."""

from __future__ import annotations

import sys

from opengym_streams import modelgen
from opengym_streams.contracts import ContractError


def register(subparsers) -> None:
    parser = subparsers.add_parser("contracts", help="the Avro contracts and their generated models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = actions.add_parser("generate", help="rewrite the library's and the system's event models from their .avsc files")
    gen.set_defaults(handler=_generate)
    check = actions.add_parser("check", help="fail when a generated models file differs from its contracts")
    check.set_defaults(handler=_check)


def _generate(args) -> int:
    try:
        wanted = modelgen.generate(write=False)
    except ContractError as exc:
        print(f"opengym contracts generate: {exc}", file=sys.stderr)
        return 1
    # Only what changed is written: the library's own models, installed read-only beside a system's, stay put.
    for path, source in wanted.items():
        if path.exists() and path.read_text() == source:
            print(f"{path} is up to date")
            continue
        path.write_text(source)
        print(f"wrote {path}")
    return 0


def _check(args) -> int:
    try:
        wanted = modelgen.generate(write=False)
    except ContractError as exc:
        print(f"opengym contracts check: {exc}", file=sys.stderr)
        return 1
    stale = [path for path, source in wanted.items() if not path.exists() or path.read_text() != source]
    for path in stale:
        print(f"{path} is stale: run `opengym contracts generate`", file=sys.stderr)
    if stale:
        return 1
    print(f"{', '.join(str(p) for p in wanted)} match the contracts")
    return 0
