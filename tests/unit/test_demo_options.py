"""`opengym demo` options reach the workers as the components' fault knobs."""

import pytest

from opengym.demo.facts import DOWNSTREAM_TYPES
from opengym.demo.faults import Faults
from opengym_streams.commands.demo import parse


def test_fault_options_become_the_workers_environment(monkeypatch):
    monkeypatch.setenv("OPENGYM_SYSTEM", "")  # restored (unset) after the test, whatever parse() sets
    demo, options = parse(["--bookings", "50", "--seed", "3", "--delay-share", "0.2", "--delay-ms", "900",
                           "--booking-timeout-ms", "400", "--payment-failure-rate", "0.5", "--pause-notifications",
                           "--rate", "7"])
    assert demo.system.name == "opengym", "OpenGym is the default system"
    assert options.workload.bookings == 50 and options.workload.seed == 3 and options.rate == 7
    assert options.faults.env() == {
        "OPENGYM_ENTITLEMENT_DELAY_SHARE": "0.2", "OPENGYM_ENTITLEMENT_DELAY_MS": "900",
        "OPENGYM_BOOKING_TIMEOUT_MS": "400", "OPENGYM_PAYMENT_FAILURE_RATE": "0.5",
        "OPENGYM_TICK_INTERVAL": "0.25", "OPENGYM_NOTIFICATIONS_PAUSED": "1",
    }


def test_a_workload_without_bookings_is_refused(monkeypatch):
    monkeypatch.setenv("OPENGYM_SYSTEM", "")  # restored (unset) after the test, whatever parse() sets
    with pytest.raises(ValueError, match="--bookings must be at least 1"):
        parse(["--bookings", "0"])


def test_the_demo_command_takes_the_rest_of_the_line_for_the_systems_parser():
    from opengym_streams.cli import build_parser

    args, rest = build_parser().parse_known_args(["demo", "--bookings", "50", "--system", "opengym"])
    assert args.takes_rest and rest == ["--bookings", "50", "--system", "opengym"]


def test_paused_notifications_are_not_expected_downstream():
    assert Faults(pause_notifications=True).expected_downstream == ("BillingLineRecorded", "AttendancePending")
    assert Faults().expected_downstream == DOWNSTREAM_TYPES
    assert "OPENGYM_NOTIFICATIONS_PAUSED" not in Faults().env()
