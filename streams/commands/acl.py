"""opengym acl plan | apply | revoke: ownership from the topic catalog, as the broker's ACLs."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "acl", help="the broker ACLs that enforce topic ownership (generated from the topic catalog)",
        description="One principal per component (User:<component>): it may write the topics the catalog "
                    "says it writes, read the topics its app subscribes to, and use its own Faust topics and "
                    "consumer group; User:external may write the commands and requests outside producers "
                    "send. Topic names carry OPENGYM_TOPIC_PREFIX. See docs/security.md.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    plan = actions.add_parser("plan", help="print every grant, with the reason for it")
    plan.set_defaults(handler=_plan)
    apply = actions.add_parser("apply", help="create the grants on the broker (idempotent; needs a super user)")
    apply.set_defaults(handler=_apply)
    revoke = actions.add_parser("revoke", help="delete exactly the grants of the plan")
    revoke.set_defaults(handler=_revoke)


def current_plan():
    """The plan of the configured system (``opengym --system``), under the current topic prefix."""
    from opengym_streams.acl import system_plan

    return system_plan()


def _plan(args) -> int:
    grants = current_plan()
    last = None
    for grant in grants:
        if grant.principal != last:
            if last is not None:
                print()
            last = grant.principal
        print(grant.line())
    principals = {g.principal for g in grants}
    print(f"\n{len(grants)} grants for {len(principals)} principals; everything else is refused", file=sys.stderr)
    return 0


def _apply(args) -> int:
    from opengym_streams.acl import apply
    from opengym_streams.kafka import admin

    grants = current_plan()
    try:
        count = apply(grants, admin())
    except Exception as exc:  # the broker's refusal (not a super user, no authorizer) comes as KafkaException
        print(f"opengym acl apply: the broker refused: {exc}", file=sys.stderr)
        return 1
    print(f"applied {count} grants for {len({g.principal for g in grants})} principals")
    return 0


def _revoke(args) -> int:
    from opengym_streams.acl import revoke
    from opengym_streams.kafka import admin

    try:
        count = revoke(current_plan(), admin())
    except Exception as exc:
        print(f"opengym acl revoke: the broker refused: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {count} grants")
    return 0
