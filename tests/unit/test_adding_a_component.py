"""Adding an 8th component, as docs/components.md says to, in a scratch copy of the repository: Loyalty,
which reacts to ReservationConfirmed with PointsAwarded. It takes 8 files, none of them restating a list,
and everything that checks the system (the ownership check, the wiring and deployment tests, the generated
docs' drift checks, the AsyncAPI parser) passes with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.source_layout import python

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = {
    "type": "record", "name": "PointsAwarded", "namespace": "opengym.loyalty",
    "doc": "Loyalty points a member earns for a confirmed booking.",
    "fields": [
        {"name": "event_id", "type": "string", "doc": "Unique id of this event; handlers dedupe on it."},
        {"name": "correlation_id", "type": "string", "doc": "The business transaction id; also the Kafka key."},
        {"name": "causation_id", "type": ["null", "string"], "default": None,
         "doc": "event_id of the event that caused this one."},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"},
         "doc": "When the fact happened (epoch millis, UTC)."},
        {"name": "booking_id", "type": "string", "doc": "The confirmed booking."},
        {"name": "member_id", "type": "string", "doc": "Who earns the points."},
        {"name": "points", "type": "int", "doc": "How many."},
    ],
}

COMPONENT = '''"""Loyalty: listens to ReservationConfirmed; emits PointsAwarded, once per confirmed booking."""

from __future__ import annotations

from opengym import topics
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.event import ignore
from opengym.models import PointsAwarded


def award(state, confirmed, now):
    if state is not None:
        return ignore("awarded before")
    points = PointsAwarded.new(caused_by=confirmed, occurred_at=now, booking_id=confirmed.booking_id,
                               member_id=confirmed.member_id, points=10)
    return {"points": points.points}, [points]


def build(settings=None) -> Component:
    from opengym.agents.system import SYSTEM

    return Component(SYSTEM.component("loyalty"), topics=topics.CATALOG, settings=settings, agents=(
        Agent("award", reads=(topics.RESERVATION_EVENTS,), table="points",
              handlers={"ReservationConfirmed": award}, outcomes={"PointsAwarded": "awarded"}),
    ))


__getattr__ = module_app(build)
'''

TOPIC = '''LOYALTY_EVENTS = Topic(
    "opengym.loyalty.events", "loyalty", _ev("loyalty", "PointsAwarded"), kind="events",
    doc="Points members earn for their bookings.",
)


'''

SERVICE = '''  loyalty:
    <<: *worker
    command: ["worker", "loyalty"]
    volumes: ["loyalty-state:/var/lib/opengym"]
    healthcheck: *metrics-health
    environment:
      <<: *opengym-env
      OPENGYM_METRICS_PORT: "9109"

'''

SCENARIO = '''
import opengym.agents.loyalty as loyalty
from opengym.models import ReservationConfirmed
from opengym_streams.testing import Scenario

with Scenario(loyalty.build(), now=1_000_000) as scenario:
    confirmed = ReservationConfirmed.new(correlation_id="b1", booking_id="b1", member_id="m1", class_id="c1",
                                         occurred_at=1_000_000)
    scenario.when(confirmed)
    scenario.expect(("opengym.loyalty.events", "PointsAwarded", {"points": 10, "member_id": "m1"}))
    scenario.when(confirmed.model_copy(update={"event_id": "the-same-confirmation-again"}))
    scenario.expect_nothing()
print("loyalty scenario OK")
'''


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    modules = ROOT / "tools" / "node" / "node_modules"
    if modules.exists():
        (dest / "tools" / "node" / "node_modules").symlink_to(modules)


def _edit(path: Path, before: str, insert: str) -> None:
    text = path.read_text()
    assert before in text, f"{path}: {before!r} not found"
    path.write_text(text.replace(before, insert + before, 1))


def test_adding_a_component_that_reacts_to_reservation_confirmed_takes_eight_files(tmp_path):
    scratch = tmp_path / "repo"
    _copy_tree(scratch)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q"], cwd=scratch, check=True)
    subprocess.run(git + ["add", "-A"], cwd=scratch, check=True)
    subprocess.run(git + ["commit", "-qm", "before"], cwd=scratch, check=True)

    (scratch / "schemas" / "loyalty").mkdir()
    (scratch / "schemas" / "loyalty" / "PointsAwarded.avsc").write_text(json.dumps(SCHEMA, indent=2) + "\n")
    _edit(scratch / "topics" / "__init__.py", "def valid_grant(event)", TOPIC)
    _edit(scratch / "topics" / "__init__.py", "RESERVATION_SEATS, RESERVATION_SEAT_REPLIES, ENTITLEMENT_MEMBERS),",
          "LOYALTY_EVENTS, ")
    (scratch / "agents" / "loyalty.py").write_text(COMPONENT)
    _edit(scratch / "agents" / "system.py", '    ComponentSpec("correlation"',
          '    ComponentSpec("loyalty", "opengym.agents.loyalty", 9109, doc="Points for confirmed bookings."),\n')
    _edit(scratch / "agents" / "system.py", "            ), doc=\"A member books a class",
          '    downstream("LoyaltyPointsProcess", "loyalty", "PointsAwarded", "PointsAwarded", 30 * SECOND, '
          '30 * SECOND, "Loyalty awards points for the confirmed booking."),\n            ')
    _edit(scratch / "docker-compose.yml", "  correlation:\n", SERVICE)
    _edit(scratch / "docker-compose.yml", "  correlation-state:\n", "  loyalty-state:\n")

    env = dict(os.environ)
    env.pop("OPENGYM_SYSTEM", None)

    def run(*argv: str) -> str:
        result = subprocess.run(python(scratch, *argv), cwd=scratch, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    for generate in (("contracts", "generate"), ("catalog", "docs"), ("catalog", "asyncapi")):
        run("-m", "opengym_streams.cli", *generate)
    assert "catalog OK" in run("-m", "opengym_streams.cli", "catalog", "check")
    assert "loyalty scenario OK" in run("-c", SCENARIO)
    run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_component_wiring.py",
        "tests/unit/test_deployment.py", "tests/unit/test_catalog.py", "tests/unit/test_asyncapi.py",
        "tests/unit/test_contracts.py")

    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=scratch,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    files = sorted(line[3:] for line in changed if "node_modules" not in line)
    assert files == sorted([
        "schemas/loyalty/PointsAwarded.avsc", "opengym/models.py", "topics/__init__.py", "agents/loyalty.py",
        "agents/system.py", "docker-compose.yml", "docs/catalog.md", "docs/asyncapi/opengym.json"]), files
