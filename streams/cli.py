"""``opengym``: the one command line of the project.

Each group of subcommands lives in its own module under ``streams/commands`` and registers itself
with ``register(subparsers)``; the list below is the whole command surface.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from opengym_streams.security import SecurityError

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
    "opengym_streams.commands.acl",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opengym",
        description="OpenGym streams: orchestration and choreography on Kafka, observed.",
    )
    parser.add_argument("--system", metavar="SYSTEM",
                        help="the system to work on: an installed system's name (opengym, order-fulfilment, ...) or "
                             "package.module[:NAME]; sets OPENGYM_SYSTEM for this command and the workers it starts "
                             "(default: $OPENGYM_SYSTEM, else the installed default)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # A command whose options depend on the system (``demo``) takes the rest of the line as it is.
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    if args.system:
        from opengym_streams.system import load

        os.environ["OPENGYM_SYSTEM"] = args.system
        try:
            load()
        except LookupError as exc:
            parser.error(str(exc))
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SecurityError as exc:  # wrong or refused credentials: one line, never a secret
        print(f"opengym {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
