"""Drives a workload through the running components: seed, send the requests at a pace the system can
answer, wait until nothing is outstanding.

:class:`Driver` is what every system's demo shares: producing (keyed and partitioned like the workers),
seeding with resends, pacing with an adaptive in-flight window, waiting with a deadline. A system's
driver subclasses it with its seed, its requests and what it still expects (``outstanding``).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any, Callable, Iterable

from confluent_kafka import Producer

from opengym_streams.codec import AvroCodec
from opengym_streams.demo.collector import FactCollector
from opengym_streams.event import Event, now_ms
from opengym_streams.kafka import producer as make_producer
from opengym_streams.system import System, load
from opengym_streams.topic import topic_name


def driver_producer() -> Producer:
    """A producer that partitions like the workers (murmur2, as Java and aiokafka do; librdkafka's
    default CRC32 would put a request on another partition than the components' tables expect)."""
    return make_producer(partitioner="murmur2_random")


class InFlightWindow:
    """How many requests may be sent and still unanswered.

    With a latency target it adapts (additive increase, multiplicative decrease, as TCP does): when
    the median answer of the last half second took longer than the target, the window shrinks by a
    third; otherwise it grows by a tenth, up to the ceiling. A loaded machine then gets fewer
    requests at once instead of a queue longer than the orchestration's own deadline. The median
    ignores the few replies a delay knob holds back on purpose."""

    def __init__(self, ceiling: int, target_latency_ms: float | None = None, floor: int = 5):
        self.ceiling = max(1, ceiling)
        self.floor = min(floor, self.ceiling)
        self.target_latency_ms = target_latency_ms
        self.size = float(self.ceiling if not target_latency_ms else max(self.floor, self.ceiling / 2))

    @property
    def limit(self) -> int:
        return int(self.size)

    def observe(self, latencies_ms: list[int]) -> None:
        if not self.target_latency_ms or len(latencies_ms) < 5:
            return
        if statistics.median(latencies_ms) > self.target_latency_ms:
            self.size = max(self.floor, self.size * 2 / 3)
        else:
            self.size = min(self.ceiling, self.size + max(1.0, self.size / 10))


class DriverTimeout(RuntimeError):
    """The system did not reach the expected state in time; the message says what is missing."""


def terminal_types(system: System, trigger: str) -> tuple[str, ...]:
    """The terminal events of the orchestration the ``trigger`` starts (what answers a request)."""
    for bt in system.catalog.transactions:
        if bt.orchestration is not None and bt.orchestration.trigger == trigger:
            return bt.orchestration.terminal
    raise LookupError(f"no orchestration of {system.name} starts on {trigger}")


class Driver:
    """Sends a workload's events and watches the facts they cause (through a :class:`FactCollector`).

    A subclass says what its requests are (:meth:`requests`, :meth:`request_event`, :meth:`id_of`), which
    event starts their orchestration (``trigger``), how to seed (:meth:`seed`), what is still owed
    (:meth:`outstanding`) and what to send while waiting (:meth:`between_polls`: a check-in, a pick)."""

    trigger: str = ""
    """The request's event type: the trigger of an orchestration of the system's catalog."""

    def __init__(self, collector: FactCollector, producer: Producer | None = None, codec: AvroCodec | None = None,
                 system: System | None = None):
        self.collector = collector
        self.producer = producer or driver_producer()
        self.codec = codec or AvroCodec()
        self.system = system or load()
        self.sent: list[str] = []
        """Correlation ids of the requests sent so far, in order."""
        self.seed_resends = 0
        self.window: InFlightWindow | None = None
        self._ids: set[str] | None = None

    @property
    def facts(self):
        return self.collector.facts

    @property
    def terminal(self) -> tuple[str, ...]:
        return terminal_types(self.system, self.trigger)

    # ---- what a system's driver says ------------------------------------------------------------

    def requests(self) -> list[Any]:
        """The workload's requests, in the order they are sent."""
        raise NotImplementedError

    def id_of(self, request: Any) -> str:
        """The correlation id of a request (its business transaction)."""
        raise NotImplementedError

    def request_event(self, request: Any, occurred_at: int) -> Event:
        raise NotImplementedError

    def seed(self) -> None:
        """Set up what the requests need (nothing by default)."""

    def between_polls(self) -> None:
        """Called after each poll while sending and settling: send what the facts seen so far call for."""

    def outstanding(self) -> dict[str, int]:
        """Work the system still owes for the requests sent so far (all zero when it is settled)."""
        sent = set(self.sent)
        answered = self.facts.by_correlation(*self.terminal)
        return {"terminal events": sum(1 for cid in sent if cid not in answered)}

    def progress_line(self, elapsed: float) -> str:
        return (f"[{elapsed:6.1f}s] sent {len(self.sent)}/{len(self.requests())}  terminal {self.terminal_count()}"
                + (f"  window {self.window.limit}" if self.window is not None else ""))

    # ---- producing -----------------------------------------------------------------------------

    def send(self, event: Event, payload: bytes | None = None) -> None:
        """Produce one event on the topic that carries it, keyed by its correlation id."""
        name = topic_name(self.system.topic_for_event(event.avro_name))
        value = payload if payload is not None else self.codec.encode(event, name)
        while True:
            try:
                self.producer.produce(name, key=event.correlation_id.encode(), value=value)
                break
            except BufferError:
                self.producer.poll(0.2)
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            raise DriverTimeout(f"{left} events still unacknowledged by the broker after {timeout:.0f}s")

    # ---- phases --------------------------------------------------------------------------------

    def request_until_answered(self, events: list[Event], unanswered: Callable[[], list[Event]],
                               describe: Callable[[Event], str], timeout: float = 60.0,
                               resend_after: float = 15.0) -> None:
        """Send ``events`` and wait until ``unanswered()`` is empty.

        A request still unanswered after ``resend_after`` seconds is sent again, with the same event id
        (seeding requests are idempotent), as any client retries; ``seed_resends`` counts them, and the demo
        says so, because an unanswered request is a lost message somewhere."""
        for event in events:
            self.send(event)
        self.flush()
        deadline = time.monotonic() + timeout
        while True:
            wait = max(0.0, min(resend_after, deadline - time.monotonic()))
            try:
                self.wait(lambda: not unanswered(), wait, lambda: "")
                return
            except DriverTimeout:
                missing = unanswered()
                if time.monotonic() >= deadline:
                    raise DriverTimeout(
                        f"after {timeout:.0f}s: seeding still misses "
                        f"{Counter(type(e).__name__ for e in missing)}: {[describe(e) for e in missing[:5]]}") from None
                for event in missing:
                    self.send(event)
                self.flush()
                self.seed_resends += len(missing)

    def send_requests(self, rate: float = 0.0, requests: Iterable | None = None,
                      on_tick: Callable[[], None] | None = None, max_in_flight: int | None = None,
                      target_latency_ms: float | None = None) -> None:
        """Send the workload's requests (or ``requests``) at ``rate`` per second (0: as fast as the
        producer takes them), never more than ``max_in_flight`` of them without a terminal event
        (fewer while answers take longer than ``target_latency_ms``: see :class:`InFlightWindow`),
        calling :meth:`between_polls` as the facts come in."""
        todo = list(requests if requests is not None else self.requests())
        self.window = InFlightWindow(max_in_flight, target_latency_ms) if max_in_flight else None
        sent_at: dict[str, int] = {}
        read = dict.fromkeys(self.terminal, 0)
        started = last_adjust = time.monotonic()
        index = 0
        while index < len(todo):
            due = len(todo) if rate <= 0 else min(len(todo), int((time.monotonic() - started) * rate) + 1)
            if self.window is not None:
                if time.monotonic() - last_adjust >= 0.5:
                    last_adjust = time.monotonic()
                    self.window.observe(self._new_latencies(read, sent_at))
                due = min(due, self.terminal_count() + self.window.limit)
            while index < due:
                request = todo[index]
                cid = self.id_of(request)
                sent_at[cid] = now_ms()
                self.send(self.request_event(request, sent_at[cid]))
                self.sent.append(cid)
                index += 1
            self.collector.poll(0.02 if rate > 0 or max_in_flight else 0)
            self.between_polls()
            if on_tick:
                on_tick()
        self.flush()

    def _new_latencies(self, read: dict[str, int], sent_at: dict[str, int]) -> list[int]:
        """Request-to-answer latencies of the requests answered since the last call."""
        latencies = []
        for type_name in read:
            answers = self.facts.of(type_name)
            for event in answers[read[type_name]:]:
                if event.correlation_id in sent_at:
                    latencies.append(event.occurred_at - sent_at[event.correlation_id])
            read[type_name] = len(answers)
        return latencies

    def terminal_count(self) -> int:
        """Requests of this workload that have their terminal event."""
        if self._ids is None:
            self._ids = {self.id_of(r) for r in self.requests()}
        return sum(1 for e in self.facts.of(*self.terminal) if e.correlation_id in self._ids)

    def settle(self, timeout: float, on_tick: Callable[[], None] | None = None) -> None:
        """Keep collecting (and sending what the facts call for) until nothing is outstanding, or fail
        after ``timeout``."""

        def done() -> bool:
            self.between_polls()
            if on_tick:
                on_tick()
            return not any(self.outstanding().values())

        self.wait(done, timeout, lambda: f"still outstanding: {self.outstanding()}")
        self.flush()

    def wait(self, condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.collector.poll(0.1)
            if condition():
                return
            if time.monotonic() > deadline:
                raise DriverTimeout(f"after {timeout:.0f}s: {describe()}")
