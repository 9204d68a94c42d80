"""opengym worker COMPONENT: run one component's Faust worker (`faust -A <its module> worker`, in this process)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="run one component as a Faust worker",
        description="Runs `faust -A <module> worker -l LEVEL [FAUST ARGS]` in this process, the module the "
                    "system's component registry names. More workers of one component share its partitions. "
                    "Fault knobs and settings come from the environment (see docs/settings.md).")
    parser.add_argument("component", help="the component to run (one of the system's registry)")
    parser.add_argument("-l", "--loglevel", default="info", help="faust log level (default info)")
    parser.add_argument("faust_args", nargs="*", help="more arguments for `faust worker` (after --)")
    parser.set_defaults(handler=_worker)


FAUST_LEVELS = {"warning": "warn", "critical": "crit"}
"""Faust's click option only knows crit|error|warn|info|debug."""


def faust_argv(component: str, loglevel: str = "info", extra: list[str] | None = None) -> list[str]:
    from opengym_streams.system import load

    loglevel = FAUST_LEVELS.get(loglevel.lower(), loglevel.lower())
    from opengym_streams.ui import UIConfig

    spec = load().component(component)
    faust = Path(sys.executable).with_name("faust")
    program = str(faust) if faust.exists() else (shutil.which("faust") or "faust")
    # Faust's web server stays off (each worker would want port 6066), except the observer's, which
    # serves the transaction view on OPENGYM_UI_PORT (opengym_streams.ui; 0 turns it off).
    web = "--with-web" if spec.observer and UIConfig.from_env().port != 0 else "--without-web"
    module = spec.module
    return [program, "-A", module, "worker", "-l", loglevel, web, *(extra or [])]


def _worker(args) -> int:
    try:
        argv = faust_argv(args.component, args.loglevel, args.faust_args)
    except KeyError as exc:
        print(f"opengym worker: {exc.args[0]}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    # Faust's command line in this process, not exec'd: a second interpreter would import everything
    # again (about a second of CPU, several on a loaded machine, on every restart; docs/notes/components.md).
    from faust.cli.faust import cli

    sys.argv = argv
    return cli.main(args=argv[1:], prog_name="faust")
