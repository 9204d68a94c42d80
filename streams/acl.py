"""Ownership as broker ACLs, generated from the topic catalog: what lint and tests say, the broker enforces.

One principal per component (``User:<component>``, the SCRAM user its app logs in as) and one for the
producers outside the system (``User:external``). A component may

- write the topics whose ``writers`` name it: its facts, its dead letters, its internal topics, its
  clock, and the commands or requests it sends to others (Reservation writes Entitlement's requests);
- read the topics its app's agents subscribe to, and nothing else;
- create, read and write its Faust app's own topics (changelogs, the assignor's leader topic: every
  name starting with ``<app id>-``), and use its consumer group (``<app id>``); the app id is the topic
  catalog's (``TopicCatalog.app_id``) behind the runtime prefix, as ``streams.runtime.make_app`` builds it.

The observer is a component like the others, so it may write only its anomalies, its clock and its
dead letters: it cannot publish a command. ``External`` may write the topics whose writers include
``external`` and read nothing. Everything else is refused (the secured broker runs with
``allow.everyone.if.no.acl.found=false``). Operators and tools use the super user.

:func:`plan` takes a topic catalog and the subscriptions, so it serves any system; :func:`system_plan`
builds both from a :class:`~opengym_streams.system.System` (default: the configured one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from opengym_streams.topic import TopicCatalog

READ, WRITE, CREATE = "READ", "WRITE", "CREATE"
TOPIC, GROUP = "TOPIC", "GROUP"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"


def app_id(catalog: TopicCatalog, component: str, prefix: str = "") -> str:
    """The Faust app id of a component: its consumer group, and the prefix of its internal topics
    (``streams.runtime.make_app``; a unit test keeps the two in step)."""
    return prefix + catalog.app_id(component)


def principal(user: str) -> str:
    return f"User:{user}"


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW binding: ``principal`` may do ``operation`` on the resource, from any host."""

    principal: str
    resource_type: str
    name: str
    operation: str
    pattern: str = LITERAL
    why: str = field(default="", compare=False)

    def binding(self):
        from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, ResourcePatternType,
                                           ResourceType)

        return AclBinding(ResourceType[self.resource_type], self.name, ResourcePatternType[self.pattern],
                          self.principal, "*", AclOperation[self.operation], AclPermissionType.ALLOW)

    def binding_filter(self):
        from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType,
                                           ResourceType)

        return AclBindingFilter(ResourceType[self.resource_type], self.name, ResourcePatternType[self.pattern],
                                self.principal, "*", AclOperation[self.operation], AclPermissionType.ALLOW)

    def line(self) -> str:
        resource = f"{self.resource_type.lower()} {self.name}{'*' if self.pattern == PREFIXED else ''}"
        return f"{self.principal:<24} {self.operation:<6} {resource:<56} {self.why}"


def plan(catalog: TopicCatalog, subscriptions: Mapping[str, Iterable[str]], components: Iterable[str],
         prefix: str = "") -> list[Grant]:
    """Every grant, sorted by principal. ``subscriptions``: component -> the catalog names of the topics
    its app reads. ``prefix``: the runtime topic prefix (``OPENGYM_TOPIC_PREFIX``)."""
    topics, external = catalog.all, catalog.external
    grants: set[Grant] = set()
    for component in components:
        who = principal(component)
        for topic in topics:
            if component in topic.writers:
                why = "owns it" if topic.owner == component else f"sends to {topic.owner}"
                grants.add(Grant(who, TOPIC, prefix + topic.name, WRITE, why=f"{why} ({topic.kind})"))
        for name in sorted(subscriptions.get(component, ())):
            grants.add(Grant(who, TOPIC, prefix + name, READ, why="its app subscribes to it"))
        own = app_id(catalog, component, prefix)
        for operation in (CREATE, READ, WRITE):
            grants.add(Grant(who, TOPIC, f"{own}-", operation, PREFIXED, why="its Faust app's own topics (changelogs)"))
        grants.add(Grant(who, GROUP, own, READ, why="its consumer group"))
    for topic in topics:
        if external in topic.writers:
            grants.add(Grant(principal(external), TOPIC, prefix + topic.name, WRITE,
                             why=f"outside producers send to {topic.owner} ({topic.kind})"))
    return sorted(grants)


def system_plan(system=None, prefix: str | None = None) -> list[Grant]:
    """The plan of ``system`` (default: the configured one, ``OPENGYM_SYSTEM``): its catalog, its
    components and what their agents read (their declarations), under ``prefix`` (default: the
    current ``OPENGYM_TOPIC_PREFIX``)."""
    from opengym_streams.catalog_check import load_subscriptions
    from opengym_streams.settings import get_settings
    from opengym_streams.system import load

    system = system or load()
    prefix = get_settings().topic_prefix if prefix is None else prefix
    return plan(system.topics, load_subscriptions(system), system.names, prefix)


def principals_of(system) -> tuple[str, ...]:
    """The users a system's secured broker needs: one per component, and the outside world."""
    return (*system.names, system.topics.external)


def apply(grants: Iterable[Grant], client, timeout: float = 30.0) -> int:
    """Create every binding (the broker ignores one it already has) and wait until the broker lists
    them; how many were asked for.

    The controller acknowledges a binding once it is in the metadata log; the broker's authorizer
    learns of it as it replays the log. Waiting until DescribeAcls (answered by the broker) lists every
    binding lets a worker started next find them."""
    grants = list(grants)
    if not grants:
        return 0
    for future in client.create_acls([g.binding() for g in grants], request_timeout=timeout).values():
        future.result()
    wanted = set(grants)
    principals = sorted({g.principal for g in grants})
    deadline = time.monotonic() + timeout
    while not wanted <= on_broker(client, principals, timeout):
        if time.monotonic() > deadline:
            missing = sorted(wanted - on_broker(client, principals, timeout))
            raise TimeoutError(f"the broker does not list {len(missing)} of the grants after {timeout:.0f}s, "
                               f"e.g. {missing[0].line()}")
        time.sleep(0.1)
    return len(grants)


def revoke(grants: Iterable[Grant], client, timeout: float = 30.0) -> int:
    """Delete exactly these bindings; how many the broker deleted."""
    filters = [g.binding_filter() for g in grants]
    if not filters:
        return 0
    deleted = 0
    for future in client.delete_acls(filters, request_timeout=timeout).values():
        deleted += len(future.result())
    return deleted


def on_broker(client, principals: Iterable[str], timeout: float = 30.0) -> set[Grant]:
    """The ALLOW bindings the broker holds for ``principals`` (to compare with a plan)."""
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType,
                                       ResourceType)

    found: set[Grant] = set()
    for who in principals:
        flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, who, None, AclOperation.ANY,
                               AclPermissionType.ALLOW)
        for binding in client.describe_acls(flt, request_timeout=timeout).result():
            found.add(Grant(binding.principal, binding.restype.name, binding.name, binding.operation.name,
                            binding.resource_pattern_type.name))
    return found
