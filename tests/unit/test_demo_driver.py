"""What the driver still waits for, computed from the facts seen so far (no Kafka)."""

from opengym.demo.driver import Driver
from opengym.demo.facts import BookingFacts as Facts
from opengym.demo.workload import WorkloadConfig, plan_workload
from opengym.models import AttendanceRecorded, SettlementConfirmed, SettlementObligationCalculated
from tests.unit.test_demo_invariants import confirmed_booking, rejected_booking


class RecordingProducer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, key, value):
        self.sent.append((topic, key, value))

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0


class SeenFacts:
    def __init__(self, events=()):
        self.facts = Facts(events)

    def poll(self, timeout=0.0, max_messages=0):
        return 0


def driver_for(events, bookings=("b1", "b2")):
    plan = plan_workload(WorkloadConfig(bookings=len(bookings)), run_id="r")
    driver = Driver(plan, SeenFacts(events), producer=RecordingProducer(), codec=object())
    driver.sent_bookings = list(bookings)
    driver._checks_in = set(bookings)
    return driver


def test_a_confirmed_booking_is_outstanding_until_its_downstream_and_check_in_are_done():
    driver = driver_for(confirmed_booking("b1", downstream=("billing",)) + rejected_booking("b2"))
    assert driver.outstanding() == {
        "terminal events": 0, "BillingLineRecorded": 0, "AttendancePending": 1, "NotificationSent": 1,
        "consume replies": 0, "releases of late consumes": 0, "check-ins": 1,
        "settlement obligations": 0, "settlement outcomes": 0}


def test_a_booking_without_answer_and_a_partner_visit_without_outcome_are_outstanding():
    visit = AttendanceRecorded.new(correlation_id="b1", booking_id="b1", member_id="m1", class_id="c1",
                                   gym_id="g2", home_gym_id="g1", partner_visit=True)
    owed = SettlementObligationCalculated.new(caused_by=visit, settlement_id="s1", booking_id="b1",
                                              payer_gym_id="g1", payee_gym_id="g2", amount_cents=900,
                                              currency="EUR")
    driver = driver_for(confirmed_booking("b1") + [visit, owed], bookings=("b1", "b2"))
    out = driver.outstanding()
    assert out["terminal events"] == 1 and out["settlement obligations"] == 0 and out["settlement outcomes"] == 1
    paid = SettlementConfirmed.new(caused_by=owed, settlement_id="s1", payment_id="p1", amount_cents=900)
    driver.collector.facts.add(paid)
    assert driver.outstanding()["settlement outcomes"] == 0


def test_the_in_flight_window_holds_bookings_back_until_answers_arrive():
    plan = plan_workload(WorkloadConfig(bookings=5), run_id="r")
    answered = [e for b in plan.bookings[:2] for e in rejected_booking(b.booking_id)]
    collector = SeenFacts()
    producer = RecordingProducer()

    class Codec:
        def encode(self, event, topic):
            return event.event_id.encode()

    driver = Driver(plan, collector, producer=producer, codec=Codec())
    polls = []

    def answer_two_after_a_while():
        polls.append(len(driver.sent_bookings))
        if len(polls) == 3:
            collector.facts.extend(answered)

    driver.send_bookings(rate=0, on_tick=answer_two_after_a_while, max_in_flight=3)
    assert polls[:3] == [3, 3, 3]
    assert len(driver.sent_bookings) == 5


def test_seed_requests_left_unanswered_are_sent_again_with_the_same_event_ids():
    from opengym.models import ClassScheduled, InstrumentGranted
    from opengym.demo.workload import grant_events, schedule_events

    plan = plan_workload(WorkloadConfig(bookings=8, gyms=2, classes_per_gym=1), run_id="r")
    producer = RecordingProducer()
    schedules, grants = schedule_events(plan), grant_events(plan)
    lost = grants[0]

    class AnswersAllButOneUntilResent(SeenFacts):
        def poll(self, timeout=0.0, max_messages=0):
            sent_ids = [key for _, key, _ in producer.sent]
            for event in schedules:
                self.facts.add(ClassScheduled.new(caused_by=event, class_id=event.class_id, gym_id=event.gym_id,
                                                  capacity=event.capacity, starts_at=event.starts_at))
            for event in grants:
                if event is not lost or sent_ids.count(lost.correlation_id.encode()) > 1:
                    self.facts.add(InstrumentGranted.new(caused_by=event, instrument_id=event.instrument_id,
                                                         member_id=event.member_id, home_gym_id=event.home_gym_id,
                                                         kind=event.kind, credits=event.credits))
            return 0

    class Codec:
        def encode(self, event, topic):
            return event.event_id.encode()

    driver = Driver(plan, AnswersAllButOneUntilResent(), producer=producer, codec=Codec())
    driver.seed(timeout=5, resend_after=0.2)
    assert driver.seed_resends == 1
    resent = [value for _, key, value in producer.sent if key == lost.correlation_id.encode()]
    assert resent == [lost.event_id.encode()] * 2


def test_the_window_shrinks_while_answers_are_slow_and_grows_back_when_they_are_fast():
    from opengym_streams.demo.driver import InFlightWindow

    window = InFlightWindow(50, target_latency_ms=1000)
    assert window.limit == 25
    window.observe([3000] * 10)
    assert window.limit == 16
    for _ in range(20):
        window.observe([4000, 4000, 4000, 200, 5000])
    assert window.limit == 5, "never below the floor"
    window.observe([300] * 4)
    assert window.limit == 5, "too few answers to judge"
    for _ in range(60):
        window.observe([300, 250, 5000, 400, 350])  # one held-back reply does not move the median
    assert window.limit == 50, "never above the ceiling"
    fixed = InFlightWindow(50)
    fixed.observe([9000] * 10)
    assert fixed.limit == 50
