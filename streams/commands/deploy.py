"""opengym deploy targets: Prometheus' scrape targets (file_sd JSON) derived from the component registry,
which docker-compose's init job writes where Prometheus reads them."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("deploy", help="deployment files derived from the component registry")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    targets = actions.add_parser("targets", help="Prometheus file_sd targets: every component at <name>:<port>")
    targets.add_argument("--out", type=Path, default=None, help="write to this file instead of stdout")
    targets.set_defaults(handler=_targets)


def scrape_targets(system=None) -> list[dict]:
    from opengym_streams.system import load

    system = system or load()
    return [{"targets": [f"{c.name}:{c.metrics_port}"], "labels": {"component": c.name}} for c in system.components]


def _targets(args) -> int:
    text = json.dumps(scrape_targets(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
