"""`opengym demo` options reach the workers as the components' fault knobs."""

from opengym_streams.cli import build_parser
from opengym_streams.demo.facts import DOWNSTREAM_TYPES
from opengym_streams.demo.runner import Faults


def test_fault_options_become_the_workers_environment():
    args = build_parser().parse_args(["demo", "--bookings", "50", "--seed", "3", "--delay-share", "0.2",
                                      "--delay-ms", "900", "--booking-timeout-ms", "400",
                                      "--payment-failure-rate", "0.5", "--pause-notifications"])
    assert args.bookings == 50 and args.seed == 3
    faults = Faults(delay_share=args.delay_share, delay_ms=args.delay_ms,
                    booking_timeout_ms=args.booking_timeout_ms, payment_failure_rate=args.payment_failure_rate,
                    pause_notifications=args.pause_notifications)
    assert faults.env() == {
        "OPENGYM_ENTITLEMENT_DELAY_SHARE": "0.2", "OPENGYM_ENTITLEMENT_DELAY_MS": "900",
        "OPENGYM_BOOKING_TIMEOUT_MS": "400", "OPENGYM_PAYMENT_FAILURE_RATE": "0.5",
        "OPENGYM_TICK_INTERVAL": "0.25", "OPENGYM_NOTIFICATIONS_PAUSED": "1",
    }


def test_paused_notifications_are_not_expected_downstream():
    assert Faults(pause_notifications=True).expected_downstream == ("BillingLineRecorded", "AttendancePending")
    assert Faults().expected_downstream == DOWNSTREAM_TYPES
    assert "OPENGYM_NOTIFICATIONS_PAUSED" not in Faults().env()
