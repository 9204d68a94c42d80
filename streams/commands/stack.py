"""opengym stack up | down | status."""

from __future__ import annotations

import sys
import time

from opengym_streams import stack


def register(subparsers) -> None:
    parser = subparsers.add_parser("stack", help="the local Kafka broker and schema registry")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="fetch (once) and start Kafka and Apicurio Registry; wait until both answer")
    up.add_argument("--fresh", action="store_true", help="wipe broker and registry data first")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each service")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop what `stack up` started (data is kept)")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="what runs, where, and where the logs are")
    status.set_defaults(handler=_status)


def _up(args) -> int:
    started = time.monotonic()
    try:
        result = stack.up(fresh=args.fresh, timeout=args.timeout)
    except stack.StackError as exc:
        print(f"opengym stack up: {exc}", file=sys.stderr)
        return 1
    for service, state in result.items():
        print(f"{service}: {state}: {stack.SERVICES[service]['what']}")
    print(f"stack ready in {time.monotonic() - started:.1f}s")
    return 0


def _down(args) -> int:
    for service, state in stack.down().items():
        print(f"{service}: {state}")
    return 0


def _status(args) -> int:
    for line in stack.status():
        print(line)
    return 0
