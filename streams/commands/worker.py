"""opengym worker COMPONENT: run one component's Faust worker (exec's `faust -A agents.<module> worker`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

COMPONENT_MODULES = {
    "reservation": "agents.reservation",
    "entitlement": "agents.entitlement",
    "tenant-billing": "agents.tenant_billing",
    "attendance": "agents.attendance",
    "notifications": "agents.notifications",
    "platform-billing": "agents.platform_billing",
    "finance": "agents.finance",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="run one component as a Faust worker",
        description="Replaces this process with `faust -A agents.<component> worker -l LEVEL [FAUST ARGS]`. "
                    "More workers of one component share its partitions. Fault knobs and settings come from "
                    "the environment (see docs/components.md).")
    parser.add_argument("component", choices=sorted(COMPONENT_MODULES) + ["correlation"],
                        help="the component to run")
    parser.add_argument("-l", "--loglevel", default="info", help="faust log level (default info)")
    parser.add_argument("faust_args", nargs="*", help="more arguments for `faust worker` (after --)")
    parser.set_defaults(handler=_worker)


FAUST_LEVELS = {"warning": "warn", "critical": "crit"}
"""Faust's click option only knows crit|error|warn|info|debug."""


def faust_argv(component: str, loglevel: str = "info", extra: list[str] | None = None) -> list[str]:
    loglevel = FAUST_LEVELS.get(loglevel.lower(), loglevel.lower())
    module = COMPONENT_MODULES.get(component, f"agents.{component.replace('-', '_')}")
    faust = Path(sys.executable).with_name("faust")
    program = str(faust) if faust.exists() else (shutil.which("faust") or "faust")
    # Faust's web server stays off (each worker would want port 6066), except the observer's, which
    # serves the transaction view on OPENGYM_UI_PORT (streams.ui; 0 turns it off).
    web = "--with-web" if component == "correlation" and os.environ.get("OPENGYM_UI_PORT", "") != "0" else "--without-web"
    return [program, "-A", module, "worker", "-l", loglevel, web, *(extra or [])]


def _worker(args) -> int:
    argv = faust_argv(args.component, args.loglevel, args.faust_args)
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 0  # not reached
