"""No committed offset passes a message that the fetcher handed out and no agent acknowledged.

**The loss this closes** (docs/notes/observer.md has the evidence). When a worker's table recovery
ends, Faust resumes the stream partitions, seeks them to their committed offsets (one OffsetFetch per
partition, tens of milliseconds in all) and then calls ``flow_control.resume()``. Messages arriving
meanwhile are fetched from the committed offsets on; Faust's fetch loop keeps handing the batch it
holds to the agents' queues after the seek, and each message it hands over moves the consumer's read
offset, so the same messages fetched again after the seek are dropped as already read. Then the
resume: flow control was already running (recovery turned it on to read the changelogs), yet mode's
``FlowControlEvent.resume`` empties every stream's queue. A message still queued there reaches no
agent, and no second copy follows. Faust's ``Consumer._new_offset`` then commits the acknowledged
offsets above it, because it lets the lowest acknowledged offset lie one above the committed offset
(an off-by-one that swallows a gap of exactly one message: the message at the committed offset, the
first of its partition after the restart, in every lost case).

**The two halves of the fix**, both installed by :func:`install` (``opengym_streams.tuning.apply`` calls it):

- :func:`resume_clears_only_after_suspend`: a resume empties the queues only when flow control really
  was suspended (a rebalance: the records in the queues belong to the old assignment and are read
  again after the seek). Resuming flow that already runs leaves the queues alone.
- The commit guard, the part every consume path goes through: the aiokafka fetcher records, per
  partition, every offset it hands to Faust since the current assignment (:class:`FetchedOffsets`),
  and ``Consumer._new_offset``, which every commit of every stream calls (per-event iteration,
  ``take()``, ``take_events()``, manual acks: they all ack into ``Consumer._acked``), returns the first
  fetched offset that was not acknowledged (:func:`commit_point`) instead of Faust's count of
  consecutive acks. A dropped message now holds its partition's commit below itself. If the hold
  outlasts :data:`REDELIVER_AFTER_S` while later offsets are acknowledged, the message was lost on its
  way to the agent: the guard logs it and seeks the partition back to it, so it is delivered again
  (the messages after it too: handlers dedupe).
- **A lost message with nothing after it** (:func:`redeliver_unreached`, the runtime calls it every
  :data:`CHECK_EVERY_S`). Faust calls ``_new_offset`` only for partitions with acknowledgements, so a
  partition whose dropped messages are all it has (after a restart, its only new record) was held but
  never delivered again: a live worker sat on it until more arrived or it restarted. When a partition
  has a fetched, unacknowledged offset while its agents have nothing queued and no batch is running,
  for :data:`REDELIVER_AFTER_S` on end, nothing is coming for it: the guard seeks back to it.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
import time
from typing import Any, Container, Iterable

from opengym_streams import offset_trace

log = logging.getLogger("opengym.commit_guard")

REDELIVER_AFTER_S = 5.0
"""How long a partition's commit may be held below an unacknowledged message, while later ones are
acknowledged (or while nothing is queued for its agents), before the guard seeks back to it. Longer
than any refetch after a seek takes. :func:`install` sets it from ``OPENGYM_REDELIVER_AFTER_S``
(Settings.redeliver_after_s)."""

CHECK_EVERY_S = 2.5
"""How often the runtime looks for fetched messages that no agent has and none acknowledged."""


def commit_point(runs: Iterable[tuple[int, int]], acked: Container[int], committed: int | None) -> int | None:
    """The highest offset one partition may commit: its first fetched offset that was not acknowledged,
    or one past the last fetched offset when every one was; None when nothing at or above
    ``committed`` was fetched.

    ``runs``: the fetched offsets as sorted, disjoint half-open ranges ``[first, end)``. Offsets
    between two runs do not exist in the log (the fetcher reads a partition in order and returns every
    record from its position on), so they hold nothing back.
    """
    last = None
    for first, end in runs:
        for offset in range(first if committed is None else max(first, committed), end):
            if offset not in acked:
                return offset
            last = offset
    return None if last is None else last + 1


class FetchedOffsets:
    """Per partition, the offsets the aiokafka fetcher handed out since the current assignment began.

    Written from the consumer's thread (each fetched batch), read and trimmed from the event loop's
    thread at every commit; hence the lock. Kept as sorted disjoint runs: a batch is one run unless
    the log has holes (compaction, transaction markers), and refetched offsets add nothing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.assignment: Any = None
        self.runs: dict[Any, list[list[int]]] = {}
        self.holds: dict[Any, tuple[int, float]] = {}
        """Partition -> (held offset, since when) while later offsets are acknowledged."""
        self.stalls: dict[Any, tuple[int, float]] = {}
        """Partition -> (unacknowledged offset, since when) while its agents had nothing to work on."""

    def start_assignment(self, assignment: Any) -> None:
        with self.lock:
            self.assignment = assignment
            self.runs.clear()
            self.holds.clear()
            self.stalls.clear()

    def add(self, tp: Any, offsets: Iterable[int]) -> None:
        """Record fetched offsets of one partition (ascending, as the fetcher returns them)."""
        new: list[list[int]] = []
        for offset in offsets:
            if new and new[-1][1] == offset:
                new[-1][1] = offset + 1
            else:
                new.append([offset, offset + 1])
        if not new:
            return
        with self.lock:
            runs = self.runs.setdefault(tp, [])
            if not runs or runs[-1][1] <= new[0][0]:  # the usual case: a batch after the last one
                if runs and runs[-1][1] == new[0][0]:
                    runs[-1][1] = new[0][1]
                    new = new[1:]
                runs.extend(new)
            else:  # a refetch after a seek back: merge
                self.runs[tp] = merge_runs(runs + new)

    def runs_of(self, tp: Any) -> list[tuple[int, int]]:
        with self.lock:
            return [(first, end) for first, end in self.runs.get(tp, ())]

    def forget_below(self, tp: Any, offset: int) -> None:
        with self.lock:
            runs = self.runs.get(tp)
            if not runs:
                return
            index = bisect.bisect_right([end for _, end in runs], offset)
            del runs[:index]
            if runs and runs[0][0] < offset:
                runs[0][0] = offset

    def partitions(self) -> list[Any]:
        with self.lock:
            return list(self.runs)

    def note_hold(self, tp: Any, offset: int | None, held: bool, now: float) -> float:
        """Track how long ``tp``'s commit has been held at ``offset``; returns the seconds so far."""
        return self._note(self.holds, tp, offset if held else None, now)

    def note_stall(self, tp: Any, offset: int | None, now: float) -> float:
        """Track how long ``tp``'s ``offset`` has gone unacknowledged with nothing for its agents to do
        (None: not so now); returns the seconds so far."""
        return self._note(self.stalls, tp, offset, now)

    def _note(self, since: dict[Any, tuple[int, float]], tp: Any, offset: int | None, now: float) -> float:
        with self.lock:
            if offset is None:
                since.pop(tp, None)
                return 0.0
            previous = since.get(tp)
            if previous is None or previous[0] != offset:
                since[tp] = (offset, now)
                return 0.0
            return now - previous[1]

    def restart_hold(self, tp: Any, now: float) -> None:
        """A seek back to the held offset was just made: its waits start over."""
        with self.lock:
            for since in (self.holds, self.stalls):
                if tp in since:
                    since[tp] = (since[tp][0], now)


def merge_runs(runs: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for first, end in sorted(runs):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([first, end])
    return merged


def resume_clears_only_after_suspend(resume):
    """Wrap ``FlowControlEvent.resume``: empty the managed queues only if flow was suspended."""

    def resume_flow(self) -> None:
        if self.is_active():
            self._suspend.clear()
            self._resume.set()
            return
        resume(self)

    resume_flow.__wrapped__ = resume
    return resume_flow


def guarded_new_offset(new_offset):
    """Wrap ``faust.transport.consumer.Consumer._new_offset`` with the commit guard."""

    def _new_offset(self, tp):
        guard: FetchedOffsets | None = getattr(self, "_opengym_fetched", None)
        if guard is None:
            return new_offset(self, tp)
        acked = self._acked[tp]
        if not acked:
            return None
        if guard.assignment is not current_assignment(self):
            offset_trace.emit("guard", tp=[tp.topic, tp.partition], result="assignment not fetched yet")
            return None  # nothing fetched in this assignment yet: acks from an older one commit nothing
        handled = set(acked)
        committed = self._committed_offset[tp]
        runs = guard.runs_of(tp)
        point = commit_point(runs, handled, committed)
        if offset_trace.enabled():
            offset_trace.emit("guard", tp=[tp.topic, tp.partition], committed=committed, point=point,
                              acked=[min(handled), max(handled), len(handled)], runs=runs[:3])
        if point is None:
            return None
        held = max(handled) > point  # acknowledged beyond a fetched offset that was not
        if guard.note_hold(tp, point, held, time.monotonic()) >= REDELIVER_AFTER_S:
            redeliver(self, guard, tp, point, "while later offsets were")
        if committed is not None and point <= committed:
            return None
        keep = [offset for offset in acked if offset >= point]
        acked[:] = keep
        self._acked_index[tp].intersection_update(keep)
        gap = self._gap.get(tp)
        if gap:
            gap.chop(0, point)
        guard.forget_below(tp, point)
        return point

    _new_offset.__wrapped__ = new_offset
    return _new_offset


def current_assignment(consumer) -> Any:
    try:
        return consumer._thread._consumer._subscription.subscription.assignment
    except AttributeError:
        return None


def redeliver_unreached(consumer, busy: bool = False) -> list[tuple[Any, int]]:
    """Seek back to every fetched message that no agent holds and none acknowledged, on partitions whose
    agents have had nothing queued for :data:`REDELIVER_AFTER_S`; returns the (partition, offset) sought.

    ``busy``: a batch is being handled (or waits for a commit), so a message may be in hand: no
    partition's wait advances. A queued record anywhere on a partition's channels restarts its wait as
    well; only a worker with nothing left to do for a partition can conclude its message is gone.
    """
    guard: FetchedOffsets | None = getattr(consumer, "_opengym_fetched", None)
    if guard is None or guard.assignment is None or guard.assignment is not current_assignment(consumer):
        return []
    now = time.monotonic()
    channels = getattr(consumer.app.topics, "_tp_index", {})
    sought = []
    for tp in guard.partitions():
        runs = guard.runs_of(tp)
        point = commit_point(runs, set(consumer._acked.get(tp, ())), consumer._committed_offset.get(tp))
        unreached = point is not None and point < runs[-1][1]  # (a point means something was fetched)
        waiting = busy or any(queued(channel) for channel in channels.get(tp, ()))
        if guard.note_stall(tp, point if unreached and not waiting else None, now) >= REDELIVER_AFTER_S:
            redeliver(consumer, guard, tp, point, "while its agents had nothing queued")
            sought.append((tp, point))
    return sought


def queued(channel) -> int:
    queue = getattr(channel, "_queue", None)  # created on first use: never create it here
    return queue.qsize() if queue is not None else 0


def redeliver(consumer, guard: FetchedOffsets, tp, offset: int, why: str) -> None:
    """Seek ``tp`` back to ``offset``: a message there was fetched but never reached an agent."""
    log.warning("%s[%s]: offset %s was fetched but never acknowledged %s; its commit has been held for "
                "%.0f s. Seeking back to deliver it again (any messages after it will be handled again and "
                "deduplicated)", tp.topic, tp.partition, offset, why, REDELIVER_AFTER_S)
    guard.restart_hold(tp, time.monotonic())

    async def seek() -> None:
        try:
            await consumer.seek(tp, offset)
        except Exception:  # revoked meanwhile: the next assignment starts from the committed offset anyway
            log.exception("%s[%s]: seeking back to %s failed", tp.topic, tp.partition, offset)

    asyncio.ensure_future(seek())


def install(redeliver_after_s: float | None = None) -> None:
    """Patch mode, aiokafka and Faust (class attributes only); idempotent."""
    global REDELIVER_AFTER_S
    if redeliver_after_s is not None:
        REDELIVER_AFTER_S = redeliver_after_s
    from aiokafka.consumer.fetcher import Fetcher
    from faust.transport.consumer import Consumer
    from mode.utils.queues import FlowControlEvent

    if getattr(Consumer._new_offset, "__wrapped__", None) is not None:
        return
    FlowControlEvent.resume = resume_clears_only_after_suspend(FlowControlEvent.resume)
    Consumer._new_offset = guarded_new_offset(Consumer._new_offset)

    fetched_records = Fetcher.fetched_records

    async def record_fetched(self, partitions, timeout=0, max_records=None):
        records = await fetched_records(self, partitions, timeout=timeout, max_records=max_records)
        if records:
            note_fetched(self._subscriptions, records)
        return records

    record_fetched.__wrapped__ = fetched_records
    Fetcher.fetched_records = record_fetched


def note_fetched(subscriptions, records) -> None:
    """Record what one ``Fetcher.fetched_records`` call handed out (its positions have moved past it)."""
    guard: FetchedOffsets | None = getattr(subscriptions, "_opengym_fetched", None)
    if guard is None:
        return
    subscription = subscriptions.subscription
    assignment = subscription.assignment if subscription is not None else None
    if assignment is not guard.assignment:
        guard.start_assignment(assignment)
    acking = subscriptions._opengym_acking
    for tp, batch in records.items():
        if acking(tp.topic):
            guard.add(tp, (record.offset for record in batch))


def attach(faust_consumer, aiokafka_consumer) -> FetchedOffsets:
    """Give a worker's Faust consumer and its aiokafka consumer one shared :class:`FetchedOffsets`."""
    guard = FetchedOffsets()
    faust_consumer._opengym_fetched = guard
    aiokafka_consumer._subscription._opengym_fetched = guard
    aiokafka_consumer._subscription._opengym_acking = faust_consumer.app.topics.acks_enabled_for
    return guard
