"""opengym stack up | down | status | env (``--secure``, or OPENGYM_STACK_SECURE=1: the secured profile)."""

from __future__ import annotations

import shlex
import sys
import time

from opengym_streams import stack
from opengym_streams.settings import from_env


def register(subparsers) -> None:
    parser = subparsers.add_parser("stack", help="the local Kafka broker and schema registry")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    secure_help = ("the secured stack instead (SASL_SSL broker with ACLs, Keycloak, authenticated registry; "
                   "its own ports and state; also OPENGYM_STACK_SECURE=1)")
    up = actions.add_parser("up", help="fetch (once) and start Kafka and Apicurio Registry; wait until both answer")
    up.add_argument("--fresh", action="store_true", help="wipe broker and registry data first")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each service")
    up.add_argument("--secure", action="store_true", help=secure_help)
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop what `stack up` started (data is kept)")
    down.add_argument("--secure", action="store_true", help=secure_help)
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="what runs, where, and where the logs are")
    status.add_argument("--secure", action="store_true", help=secure_help)
    status.set_defaults(handler=_status)
    env = actions.add_parser(
        "env", help="print the environment a client of the stack needs, as shell exports",
        description="Prints `export NAME=value` lines: the addresses and, for the secured stack, the protocol, "
                    "the CA file and the files that hold the passwords (never a password itself). Use it as "
                    '`eval "$(opengym stack env --secure)"`.')
    env.add_argument("--secure", action="store_true", help=secure_help)
    env.add_argument("--user", default=stack.ADMIN_USER,
                     help="the SCRAM user to log in as (default %(default)s, the super user; components log in "
                          "as themselves through OPENGYM_SASL_CREDENTIALS_DIR)")
    env.set_defaults(handler=_env)


def _secure(args) -> bool:
    return bool(args.secure) or from_env(stack.SecureStackConfig).secure


def stack_users() -> tuple[str, ...]:
    """The SCRAM users the secured stack creates for the configured system (``opengym --system``): one
    principal per component, and the outside world."""
    from opengym_streams.acl import principals_of
    from opengym_streams.system import load

    return principals_of(load())


def _up(args) -> int:
    started = time.monotonic()
    secure = _secure(args)
    try:
        result = stack.up(fresh=args.fresh, timeout=args.timeout, secure=secure,
                          users=stack_users() if secure else ())
    except stack.StackError as exc:
        print(f"opengym stack up: {exc}", file=sys.stderr)
        return 1
    specs = stack.services(stack.SECURE if secure else stack.OPEN)
    for service, state in result.items():
        print(f"{service}: {state}: {specs[service].what}")
    print(f"stack ready in {time.monotonic() - started:.1f}s")
    if secure:
        print('clients: eval "$(opengym stack env --secure)"; then `opengym topics create` and `opengym acl apply`')
    return 0


def _down(args) -> int:
    for service, state in stack.down(secure=_secure(args)).items():
        print(f"{service}: {state}")
    return 0


def _status(args) -> int:
    for line in stack.status(secure=_secure(args)):
        print(line)
    return 0


def _env(args) -> int:
    layout = stack.layout_for(secure=_secure(args))
    env = stack.client_env(layout, args.user)
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    secured = stack.client_env(stack.layout_for(secure=True), args.user)
    leftovers = sorted(set(secured) - set(env))
    if leftovers:  # back to the open stack from a shell that used the secured one
        print(f"unset {' '.join(leftovers)}")
    return 0
