"""``opengym``: the one command line of the project.

Each group of subcommands lives in its own module under ``streams/commands`` and registers itself
with ``register(subparsers)``; the list below is the whole command surface.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "opengym_streams.commands.stack",
    "opengym_streams.commands.topics",
    "opengym_streams.commands.contracts",
    "opengym_streams.commands.produce",
    "opengym_streams.commands.consume",
    "opengym_streams.commands.schemas",
    "opengym_streams.commands.worker",
    "opengym_streams.commands.demo",
    "opengym_streams.commands.catalog",
    "opengym_streams.commands.trace",
    "opengym_streams.commands.transactions",
    "opengym_streams.commands.dlq",
    "opengym_streams.commands.bench",
    "opengym_streams.commands.settings",
    "opengym_streams.commands.deploy",
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
