"""Downstream reactions to ReservationConfirmed and the settlement choreography: each component's own
runtime code, the choreography as the components react to each other's facts (no Kafka)."""

from __future__ import annotations

import pytest

import opengym.agents.attendance as attendance
import opengym.agents.finance as finance
import opengym.agents.notifications as notifications
import opengym.agents.platform_billing as platform_billing
import opengym.agents.tenant_billing as tenant_billing
from opengym.agents.finance.logic import GatewayConfig
from opengym.models import CheckInRequested, ReservationConfirmed
from opengym_streams.testing import Scenario

NOW = 1_000_000


def confirmed(booking_id="b1", gym="gym-a", home="gym-b", event_id=None):
    event = ReservationConfirmed.new(correlation_id=booking_id, booking_id=booking_id, member_id="m1", class_id="c1",
                                     gym_id=gym, home_gym_id=home, instrument_id="pack-1",
                                     instrument_kind="CLASS_PACK", occurred_at=NOW)
    return event.model_copy(update={"event_id": event_id}) if event_id else event


def check_in(booking_id="b1", member="m1"):
    return CheckInRequested.new(correlation_id=booking_id, booking_id=booking_id, member_id=member, occurred_at=NOW)


def test_one_billing_line_per_confirmed_booking_even_when_confirmed_twice(monkeypatch):
    monkeypatch.setenv("OPENGYM_CLASS_PRICE_CENTS", "1500")
    with Scenario(tenant_billing.build(), now=NOW) as billing:
        out = billing.when(confirmed())
        assert [(p.type, p.event.amount_cents, p.event.currency, p.event.correlation_id) for p in out] == \
            [("BillingLineRecorded", 1500, "EUR", "b1")]
        billing.when(confirmed(event_id="replayed"))
        billing.expect_nothing()


def test_one_notification_per_confirmed_booking_even_when_confirmed_twice():
    with Scenario(notifications.build(), now=NOW) as notify:
        notify.when(confirmed())
        notify.expect(("opengym.notifications.events", "NotificationSent", {"channel": "EMAIL",
                                                                             "template": "booking-confirmed"}))
        notify.when(confirmed(event_id="replayed"))
        notify.expect_nothing()


def test_a_paused_notifications_worker_reads_nothing(monkeypatch):
    monkeypatch.setenv("OPENGYM_NOTIFICATIONS_PAUSED", "1")
    assert notifications.build().agents == ()


@pytest.fixture
def attend():
    with Scenario(attendance.build(), now=NOW) as scenario:
        yield scenario


def test_attendance_is_pending_then_recorded_as_a_partner_visit(attend):
    attend.when(confirmed())
    attend.expect(("opengym.attendance.events", "AttendancePending"))
    attend.when(confirmed(event_id="replayed"))
    attend.expect_nothing()
    attend.when(check_in())
    attend.expect(("opengym.attendance.events", "AttendanceRecorded",
                   {"partner_visit": True, "gym_id": "gym-a", "home_gym_id": "gym-b"}))
    attend.when(check_in())
    attend.expect(("opengym.attendance.events", "CheckInRejected", {"reason": "ALREADY_RECORDED"}))


def test_a_home_gym_visit_is_no_partner_visit(attend):
    attend.given(confirmed(gym="gym-b", home="gym-b"))
    assert attend.when(check_in())[0].event.partner_visit is False


def test_check_ins_without_a_pending_attendance_or_by_someone_else_are_rejected(attend):
    attend.when(check_in())
    attend.expect(("opengym.attendance.events", "CheckInRejected", {"reason": "NO_PENDING_ATTENDANCE"}))
    attend.given(confirmed("b2"))
    attend.when(check_in("b2", member="m2"))
    attend.expect(("opengym.attendance.events", "CheckInRejected", {"reason": "MEMBER_MISMATCH"}))


def settlement(monkeypatch, failure_rate):
    """The choreography: each component reacts to the previous one's fact; nobody drives it."""
    monkeypatch.setenv("OPENGYM_PAYMENT_FAILURE_RATE", str(failure_rate))
    monkeypatch.setenv("OPENGYM_PARTNER_VISIT_FEE_CENTS", "1200")
    return Scenario(attendance.build(), platform_billing.build(), finance.build(), now=NOW, follow=True)


def test_a_partner_visit_is_settled_between_the_two_gyms(monkeypatch):
    with settlement(monkeypatch, 0.0) as chain:
        chain.given(confirmed())
        chain.when(check_in())
        chain.expect(("opengym.attendance.events", "AttendanceRecorded"),
                     ("opengym.platform-billing.events", "SettlementObligationCalculated",
                      {"payer_gym_id": "gym-b", "payee_gym_id": "gym-a", "amount_cents": 1200}),
                     ("opengym.finance.events", "PaymentInitiated"), ("opengym.finance.events", "PaymentSettled"),
                     ("opengym.platform-billing.events", "SettlementConfirmed",
                      {"settlement_id": "settlement-b1", "amount_cents": 1200}))
        assert {p.event.correlation_id for p in chain.last} == {"b1"}


def test_a_failed_payment_escalates_the_settlement(monkeypatch):
    with settlement(monkeypatch, 1.0) as chain:
        chain.given(confirmed())
        chain.when(check_in())
        assert [p.type for p in chain.last][-2:] == ["PaymentFailed", "SettlementEscalated"]
        assert chain.last[-1].event.reason.value == "PAYMENT_FAILED"


def test_home_visits_owe_nothing_and_a_redelivered_visit_owes_once(monkeypatch):
    with settlement(monkeypatch, 0.0) as chain:
        chain.given(confirmed(gym="gym-a", home="gym-a"))
        chain.when(check_in())
        chain.expect(("opengym.attendance.events", "AttendanceRecorded", {"partner_visit": False}))
        chain.given(confirmed("b2"))
        visit = next(p.event for p in chain.when(check_in("b2")) if p.type == "AttendanceRecorded")
        chain.when(visit.model_copy(update={"event_id": "the-same-visit-again"}))
        chain.expect_nothing()


def test_a_payment_outcome_without_its_obligation_is_ignored_with_a_reason(monkeypatch):
    from opengym.models import PaymentSettled

    from opengym_streams.monitoring.metrics import IGNORED

    with Scenario(platform_billing.build(), now=NOW) as billing:
        counter = IGNORED.labels("platform-billing", "PaymentSettled", "no obligation for this settlement")
        before = counter._value.get()
        billing.when(PaymentSettled.new(correlation_id="b9", payment_id="payment-settlement-b9",
                                        settlement_id="settlement-b9", amount_cents=1200, occurred_at=NOW))
        billing.expect_nothing()
        assert counter._value.get() == before + 1


def test_finance_pays_an_obligation_once_and_the_gateway_is_deterministic(monkeypatch):
    with settlement(monkeypatch, 0.0) as chain:
        chain.given(confirmed())
        chain.when(check_in())
        obligation = next(p.event for p in chain.last if p.type == "SettlementObligationCalculated")
    with Scenario(finance.build(), now=NOW) as pay:
        assert [p.type for p in pay.when(obligation)] == ["PaymentInitiated", "PaymentSettled"]
        pay.when(obligation.model_copy(update={"event_id": "the-same-obligation-again"}))
        pay.expect_nothing()
    gateway = GatewayConfig(failure_rate=0.2)
    fails = [gateway.fails(f"payment-{i}") for i in range(2000)]
    assert fails == [gateway.fails(f"payment-{i}") for i in range(2000)]
    assert 0.16 < sum(fails) / len(fails) < 0.24
