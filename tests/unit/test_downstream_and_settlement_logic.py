"""Downstream reactions to ReservationConfirmed and the settlement choreography, as pure logic."""

from __future__ import annotations

from agents.attendance import logic as attendance
from agents.finance import logic as finance
from agents.finance.logic import GatewayConfig
from agents.notifications import logic as notifications
from agents.platform_billing import logic as platform
from agents.platform_billing.logic import SettlementConfig
from agents.tenant_billing import logic as billing
from agents.tenant_billing.logic import BillingConfig
from streams.models import CheckInRequested, ReservationConfirmed

NOW = 1_000_000


def confirmed(booking_id="b1", gym="gym-a", home="gym-b", event_id=None):
    event = ReservationConfirmed.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1", class_id="c1",
                                     gym_id=gym, home_gym_id=home, instrument_id="pack-1",
                                     instrument_kind="CLASS_PACK")
    return event.model_copy(update={"event_id": event_id}) if event_id else event


def check_in(booking_id="b1", member="m1"):
    return CheckInRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member)


def test_one_billing_line_per_confirmed_booking_even_when_confirmed_twice():
    config = BillingConfig(price_cents=1500, currency="EUR")
    state, out = billing.on_confirmed(None, confirmed(), now=NOW, config=config)
    assert [(e.type_name, e.amount_cents, e.currency, e.correlation_id) for e in out] == \
        [("BillingLineRecorded", 1500, "EUR", "b1")]
    assert billing.on_confirmed(state, confirmed(event_id="replayed"), now=NOW, config=config)[1] == []


def test_one_notification_per_confirmed_booking_even_when_confirmed_twice():
    state, out = notifications.on_confirmed(None, confirmed(), now=NOW)
    assert [(e.type_name, e.channel.value, e.template) for e in out] == [("NotificationSent", "EMAIL",
                                                                           "booking-confirmed")]
    assert notifications.on_confirmed(state, confirmed(event_id="replayed"), now=NOW)[1] == []


def test_attendance_is_pending_then_recorded_as_a_partner_visit():
    state, out = attendance.on_event(None, confirmed(), now=NOW)
    assert [e.type_name for e in out] == ["AttendancePending"]
    assert attendance.on_event(state, confirmed(event_id="replayed"), now=NOW)[1] == []
    state, out = attendance.on_event(state, check_in(), now=NOW)
    assert [(e.type_name, e.partner_visit, e.gym_id, e.home_gym_id) for e in out] == \
        [("AttendanceRecorded", True, "gym-a", "gym-b")]
    _, out = attendance.on_event(state, check_in(), now=NOW)
    assert [(e.type_name, e.reason.value) for e in out] == [("CheckInRejected", "ALREADY_RECORDED")]


def test_a_home_gym_visit_is_no_partner_visit():
    state, _ = attendance.on_event(None, confirmed(gym="gym-b", home="gym-b"), now=NOW)
    _, out = attendance.on_event(state, check_in(), now=NOW)
    assert out[0].partner_visit is False


def test_check_ins_without_a_pending_attendance_or_by_someone_else_are_rejected():
    _, out = attendance.on_event(None, check_in(), now=NOW)
    assert out[0].reason.value == "NO_PENDING_ATTENDANCE"
    state, _ = attendance.on_event(None, confirmed(), now=NOW)
    _, out = attendance.on_event(state, check_in(member="m2"), now=NOW)
    assert out[0].reason.value == "MEMBER_MISMATCH"


def visit_recorded(partner=True):
    state, _ = attendance.on_event(None, confirmed(home="gym-b" if partner else "gym-a"), now=NOW)
    _, out = attendance.on_event(state, check_in(), now=NOW)
    return out[0]


def run_chain(failure_rate):
    """The choreography: each component reacts to the previous one's fact; nobody drives it."""
    config = SettlementConfig(visit_fee_cents=1200, currency="EUR")
    pb_state, obligations = platform.on_event(None, visit_recorded(), now=NOW, config=config)
    fin_state, payments = finance.on_obligation(None, obligations[0], now=NOW, config=GatewayConfig(failure_rate))
    outcomes = []
    for payment in payments[1:]:
        pb_state, emitted = platform.on_event(pb_state, payment, now=NOW, config=config)
        outcomes.extend(emitted)
    return obligations, payments, outcomes


def test_a_partner_visit_is_settled_between_the_two_gyms():
    obligations, payments, outcomes = run_chain(failure_rate=0.0)
    obligation = obligations[0]
    assert (obligation.payer_gym_id, obligation.payee_gym_id, obligation.amount_cents, obligation.correlation_id) == \
        ("gym-b", "gym-a", 1200, "b1")
    assert [e.type_name for e in payments] == ["PaymentInitiated", "PaymentSettled"]
    assert [(e.type_name, e.settlement_id, e.amount_cents) for e in outcomes] == \
        [("SettlementConfirmed", "settlement-b1", 1200)]
    assert len({e.correlation_id for e in obligations + payments + outcomes}) == 1


def test_a_failed_payment_escalates_the_settlement():
    _, payments, outcomes = run_chain(failure_rate=1.0)
    assert [e.type_name for e in payments] == ["PaymentInitiated", "PaymentFailed"]
    assert [(e.type_name, e.reason.value) for e in outcomes] == [("SettlementEscalated", "PAYMENT_FAILED")]


def test_home_visits_owe_nothing_and_a_redelivered_visit_owes_once():
    config = SettlementConfig()
    assert platform.on_event(None, visit_recorded(partner=False), now=NOW, config=config)[1] == []
    visit = visit_recorded()
    state, first = platform.on_event(None, visit, now=NOW, config=config)
    assert len(first) == 1 and platform.on_event(state, visit, now=NOW, config=config)[1] == []


def test_finance_pays_an_obligation_once_and_the_gateway_is_deterministic():
    obligations, _, _ = run_chain(failure_rate=0.0)
    state, out = finance.on_obligation(None, obligations[0], now=NOW, config=GatewayConfig(0.0))
    assert finance.on_obligation(state, obligations[0], now=NOW, config=GatewayConfig(0.0))[1] == []
    gateway = GatewayConfig(failure_rate=0.2)
    fails = [gateway.fails(f"payment-{i}") for i in range(2000)]
    assert fails == [gateway.fails(f"payment-{i}") for i in range(2000)]
    assert 0.16 < sum(fails) / len(fails) < 0.24
