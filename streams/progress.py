"""How far a worker has read each input partition, so a clock tick judges no deadline that a fact still
unread could meet.

After a restart a worker reads its backlog while its clock ticks at wall-clock time, and the inputs of one
key (a request on one topic, its reply on another, the ticks on a third) are read in whatever interleaving
the batches have. A tick handled before a reply that is still waiting in the backlog would time out what
the first run confirmed: the replay would publish a second, contradicting terminal event. ``Progress``
caps the time a tick may judge at the time of the last fact read on every partition that still has
unread records: a fact waiting there was published after that one. The observer uses it for the same
reason (it never calls a fact missing that is still waiting), and the runtime gives it to every agent
that handles clock ticks.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

log = logging.getLogger("opengym.progress")

HELD_NOTICE_S = 30.0
"""How long judging may stay held back by unread records before the worker says which partition holds it."""


class Progress:
    """How far this worker has got through each input partition, so it never calls a fact missing that
    is still waiting, unread, on another topic (after a restart the backlog of each topic drains at its
    own pace while the clock ticks at wall-clock time).

    ``judge_until(now)`` is ``now`` while the worker is caught up; while a partition still has unread
    messages it is at most the time of the last fact handled there: a fact still waiting on it was
    published after that one, so only deadlines before it can be judged.
    """

    VIEW_TTL_S = 0.25
    """How long a look at the consumer's high watermarks is reused: messages that arrived since are
    younger than that, well inside the grace the observer gives facts in flight."""

    def __init__(self, consumer_view: Callable[[], Any] | None = None, view_ttl_s: float | None = None,
                 enabled: bool = True):
        self.next_offset: dict[tuple[str, int], int] = {}
        self.last_time: dict[tuple[str, int], int] = {}
        self.start_end: dict[tuple[str, int], int] = {}
        """The high watermark of each input partition when it was first looked at in this assignment."""
        self.consumer_view = consumer_view or (lambda: None)
        self.view_ttl_s = self.VIEW_TTL_S if view_ttl_s is None else view_ttl_s
        self.enabled = enabled
        self._view = None
        self._view_at = float("-inf")
        self._held_since: float | None = None
        self._held_noticed = False

    def _current_view(self):
        now = time.monotonic()
        if self._view is None or now - self._view_at >= self.view_ttl_s:
            self._view, self._view_at = self.consumer_view(), now
        return self._view

    def handled(self, message, occurred_at: int | None) -> None:
        tp = (message.topic, message.partition)
        self.next_offset[tp] = max(self.next_offset.get(tp, 0), message.offset + 1)
        if occurred_at is not None:
            self.last_time[tp] = max(self.last_time.get(tp, 0), occurred_at)

    def replaying(self) -> bool:
        """Still reading what was already in the log when this worker got its partitions: a replay after
        a crash, a backlog. Only then can an event come before the state it needs (in a running system
        its cause was handled here first); :func:`~opengym_streams.event.not_yet` parks only then."""
        if not self.enabled:
            return False
        view = self._current_view()
        if view is None:
            return False
        for tp in [tp for tp in self.start_end if tp not in view]:
            del self.start_end[tp]  # given away: a backlog of its own when it comes back
        for tp, (highwater, committed) in view.items():
            if highwater is None:
                return True  # nothing fetched yet
            start = self.start_end.setdefault(tp, highwater)
            if max(self.next_offset.get(tp, 0), committed or 0) < start:
                return True
        return False

    def judge_until(self, now: int) -> int:
        if not self.enabled:
            return now
        view = self._current_view()
        if view is None:
            return now
        limit = now
        held_by = None
        for tp, (highwater, committed) in view.items():
            if highwater is None:  # nothing fetched yet: nothing is known about what waits there
                limit, held_by = 0, (tp, None, None)
                break
            done = max(self.next_offset.get(tp, 0), committed or 0)
            if highwater > done and self.last_time.get(tp, 0) < limit:
                limit, held_by = self.last_time.get(tp, 0), (tp, highwater, done)
        self._note_held(held_by)
        return limit

    def _note_held(self, held_by) -> None:
        """Say once, after ``HELD_NOTICE_S`` of it, which partition keeps judging back (a backlog draining
        is expected to; a partition that never catches up means no deadline is judged at all)."""
        if held_by is None:
            self._held_since, self._held_noticed = None, False
            return
        at = time.monotonic()
        if self._held_since is None:
            self._held_since = at
        elif not self._held_noticed and at - self._held_since >= HELD_NOTICE_S:
            self._held_noticed = True
            (topic, partition), highwater, done = held_by
            log.info("judging deadlines held back for %.0f s: %s[%s] has unread records (high watermark %s, "
                     "read up to %s); nothing past its last fact read is judged until it is read",
                     at - self._held_since, topic, partition, highwater, done)


def faust_consumer_view(component: Component, inputs: Callable[[], set[str]]):
    """{(topic, partition): (highwater, committed offset at assignment)} for the input topics."""
    def view() -> dict[tuple[str, int], tuple[int | None, int | None]] | None:
        if "runtime" not in component.__dict__:  # no Faust app (a unit test drives the handlers)
            return None
        consumer = getattr(component.app, "_consumer", None)
        if consumer is None:
            return None
        try:
            assigned = consumer.assignment()
        except Exception:  # not started (agent tests) or between assignments
            return None
        committed = getattr(consumer, "_committed_offset", {})
        names = inputs()
        return {(tp.topic, tp.partition): (consumer.highwater(tp), committed.get(tp))
                for tp in assigned if tp.topic in names}
    return view
