"""``opengym``: the one command line of the project.

Each group of subcommands lives in its own module under ``streams/commands`` and registers itself
with ``register(subparsers)``; the list below is the whole command surface.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "streams.commands.stack",
    "streams.commands.topics",
    "streams.commands.contracts",
    "streams.commands.produce",
    "streams.commands.consume",
    "streams.commands.schemas",
    "streams.commands.worker",
    "streams.commands.demo",
    "streams.commands.catalog",
    "streams.commands.trace",
    "streams.commands.transactions",
    "streams.commands.dlq",
    "streams.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opengym",
        description="OpenGym streams: orchestration and choreography on Kafka, observed.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
