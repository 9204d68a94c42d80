"""Reading whole topics with plain confluent-kafka consumers: once to their current end, or tailing them.

For the CLI (``opengym trace``, ``opengym dlq``) and the observer's UI, which read the topics nobody's
agent reads for them (anomalies, dead letters, redrives). A read that cannot reach the end in time says so
(:class:`ReadTimeout`); it never returns a part as if it were the whole.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from opengym_streams.kafka import consumer

log = logging.getLogger("opengym.read")


class ReadTimeout(RuntimeError):
    """The topics were not read to their end within the time allowed."""


def _assignment(client, names: list[str], start_ms: int | None = None):
    assignment, ends = [], {}
    for name in names:
        meta = client.list_topics(name, timeout=10).topics.get(name)
        if meta is None or meta.error is not None:
            continue
        for partition in meta.partitions:
            low, high = client.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
            ends[(name, partition)] = high
            assignment.append(TopicPartition(name, partition, OFFSET_BEGINNING))
    if start_ms is not None and assignment:
        wanted = [TopicPartition(tp.topic, tp.partition, start_ms) for tp in assignment]
        found = client.offsets_for_times(wanted, timeout=10)
        assignment = [TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else ends[(tp.topic, tp.partition)])
                      for tp in found]
    return assignment, ends


def read_to_end(names: list[str], timeout: float = 60.0, start_ms: int | None = None) -> Iterator:
    """Every message of these topics (from ``start_ms``, else the beginning) up to the end they had when
    the read began; raises :class:`ReadTimeout` naming what was left unread."""
    client = consumer(f"opengym-read-{uuid.uuid4()}")
    try:
        assignment, ends = _assignment(client, names, start_ms)
        positions = {tp: 0 for tp in ends}
        for tp in assignment:
            positions[(tp.topic, tp.partition)] = max(tp.offset, 0)
        todo = {tp for tp, end in ends.items() if positions[tp] < end}
        if not todo:
            return
        client.assign([tp for tp in assignment if (tp.topic, tp.partition) in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                left = sum(ends[tp] - positions[tp] for tp in todo)
                raise ReadTimeout(f"read {', '.join(names)} for {timeout:.0f}s and {left} messages on "
                                  f"{len(todo)} partitions are still unread")
            msg = client.poll(0.5)
            if msg is None or msg.error():
                continue
            tp = (msg.topic(), msg.partition())
            positions[tp] = msg.offset() + 1
            if positions[tp] >= ends.get(tp, 0):
                todo.discard(tp)
            if msg.offset() < ends.get(tp, 0):
                yield msg
    finally:
        client.close()


class TopicTail:
    """A daemon thread that reads topics from ``start_ms`` (or the beginning) and keeps following them,
    handing each message to ``handle``. ``caught_up`` is set once it has read to the end the topics had
    at start. It reads only what its topics carry: nothing per event of the topics the agents read."""

    def __init__(self, names: Callable[[], list[str]], handle: Callable, start_ms: Callable[[], int | None] = lambda: None,
                 name: str = "opengym-tail"):
        self.names = names
        self.handle = handle
        self.start_ms = start_ms
        self.caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:  # the broker went away or a topic is missing: try again shortly
                log.exception("tailing %s failed; retrying", self.names())
                self._stop.wait(2.0)

    def _follow(self) -> None:
        client = consumer(f"opengym-tail-{uuid.uuid4()}")
        try:
            names = self.names()
            assignment, ends = _assignment(client, names, self.start_ms())
            if not assignment:
                self.caught_up.set()
                self._stop.wait(2.0)
                return
            client.assign(assignment)
            pending = {tp for tp, end in ends.items() if end > 0}
            for tp in assignment:
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    pending.discard((tp.topic, tp.partition))
            if not pending:
                self.caught_up.set()
            while not self._stop.is_set():
                msg = client.poll(0.5)
                if msg is None:
                    if not pending:
                        self.caught_up.set()
                    continue
                if msg.error():
                    continue
                tp = (msg.topic(), msg.partition())
                if tp in pending and msg.offset() + 1 >= ends[tp]:
                    pending.discard(tp)
                try:
                    self.handle(msg)
                except Exception:
                    log.exception("handling %s[%s]@%s failed", msg.topic(), msg.partition(), msg.offset())
                if not pending:
                    self.caught_up.set()
        finally:
            client.close()
