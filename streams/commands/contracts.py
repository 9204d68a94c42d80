"""opengym contracts generate | check: the pydantic models derived from the .avsc files."""

from __future__ import annotations

import sys

from streams import modelgen
from streams.contracts import ContractError


def register(subparsers) -> None:
    parser = subparsers.add_parser("contracts", help="the Avro contracts and their generated models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = actions.add_parser("generate", help="rewrite streams/models.py from schemas/")
    gen.set_defaults(handler=_generate)
    check = actions.add_parser("check", help="fail when streams/models.py differs from schemas/")
    check.set_defaults(handler=_check)


def _generate(args) -> int:
    try:
        modelgen.generate(write=True)
    except ContractError as exc:
        print(f"opengym contracts generate: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {modelgen.MODELS_PATH}")
    return 0


def _check(args) -> int:
    try:
        wanted = modelgen.generate(write=False)
    except ContractError as exc:
        print(f"opengym contracts check: {exc}", file=sys.stderr)
        return 1
    if modelgen.MODELS_PATH.read_text() != wanted:
        print("streams/models.py is stale: run `opengym contracts generate`", file=sys.stderr)
        return 1
    print("streams/models.py matches schemas/")
    return 0
