"""A record of what happens to every input offset inside one worker, for chasing lost or doubled messages.

``OPENGYM_TRACE_OFFSETS=<file>`` makes :func:`opengym_streams.tuning.apply` install it: every worker process then
appends JSON lines to that file (one per event, with the process id), saying for each (topic,
partition, offset) when it was fetched, handed to the conductor, dropped from a stream's queue,
handed to the agent, acknowledged, and committed, beside the rebalances, seeks and flow-control
changes around it. Off by default: it costs a JSON line per message.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time

_lock = threading.Lock()
_out = None
_installed = False


def enabled() -> bool:
    return _out is not None


def emit(kind: str, **fields) -> None:
    if _out is None:
        return
    line = json.dumps({"t": round(time.time(), 6), "pid": os.getpid(), "kind": kind, **fields}, default=str)
    with _lock:
        _out.write(line + "\n")


def _tp(tp) -> list:
    return [tp.topic, tp.partition]


def _message(message) -> dict:
    return {"topic": message.topic, "partition": message.partition, "offset": message.offset}


def install(path: str) -> None:
    """Patch Faust and aiokafka (class attributes only) so that each step below emits a line."""
    global _out, _installed
    if _installed:
        return
    _out = open(path, "a", buffering=1)
    _installed = True

    from aiokafka.consumer.fetcher import Fetcher
    from faust.transport.consumer import Consumer
    from faust.transport.drivers import aiokafka as driver
    from mode.utils.queues import FlowControlEvent, FlowControlQueue, ThrowableQueue

    from opengym_streams.runtime import Runtime

    def app_state(app) -> dict:
        return {"generation": app.consumer_generation_id, "flow": app.flow_control.is_active()}

    getmany = Consumer.getmany

    async def traced_getmany(self, timeout):
        async for tp, message in getmany(self, timeout):
            emit("fetched", **_message(message), message_generation=message.generation_id, **app_state(self.app))
            yield tp, message

    Consumer.getmany = traced_getmany

    init = Consumer.__init__

    @functools.wraps(init)
    def traced_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        callback = self.callback

        async def delivered(message):
            emit("delivered", **_message(message), **app_state(self.app))
            return await callback(message)

        self.callback = delivered

    Consumer.__init__ = traced_init

    for queue_class in (FlowControlQueue, ThrowableQueue):
        clear = queue_class.clear

        def traced_clear(self, _clear=clear):
            dropped = [_message(item.message) for item in list(self._queue) if hasattr(item, "message")]
            if dropped:
                emit("queue_cleared", messages=dropped)
            return _clear(self)

        queue_class.clear = traced_clear

    for name in ("suspend", "resume"):
        original = getattr(FlowControlEvent, name)

        def traced_flow(self, _original=original, _name=name):
            emit(f"flow_control_{_name}", was_active=self.is_active())
            return _original(self)

        setattr(FlowControlEvent, name, traced_flow)

    handle = Runtime.handle

    async def traced_handle(self, agent, table, message):
        emit("handled", **_message(message), message_generation=message.generation_id)
        return await handle(self, agent, table, message)

    Runtime.handle = traced_handle

    ack = Consumer.ack

    def traced_ack(self, message):
        result = ack(self, message)
        emit("acked", **_message(message), accepted=result)
        return result

    Consumer.ack = traced_ack

    new_offset = Consumer._new_offset

    def traced_new_offset(self, tp):
        acked = sorted(self._acked.get(tp, ()))
        gap = sorted((i.begin, i.end) for i in self._gap.get(tp, ())) if tp in self._gap else []
        committed = self._committed_offset.get(tp)
        result = new_offset(self, tp)
        if acked or result is not None:
            emit("new_offset", tp=_tp(tp), committed=committed, acked_min=acked[0] if acked else None,
                 acked_max=acked[-1] if acked else None, acked_count=len(acked), gap=gap[:5], result=result)
        return result

    Consumer._new_offset = traced_new_offset

    commit_offsets = Consumer._commit_offsets

    async def traced_commit_offsets(self, offsets, start_new_transaction=True):
        result = await commit_offsets(self, offsets, start_new_transaction)
        emit("committed", offsets=[[*_tp(tp), o] for tp, o in offsets.items()], did_commit=result)
        return result

    Consumer._commit_offsets = traced_commit_offsets

    perform_seek = Consumer.perform_seek

    async def traced_perform_seek(self):
        emit("perform_seek_start", **app_state(self.app))
        await perform_seek(self)
        emit("perform_seek_end", read_offset=[[*_tp(tp), o] for tp, o in self._read_offset.items()],
             **app_state(self.app))

    Consumer.perform_seek = traced_perform_seek

    seek_to = Fetcher.seek_to

    def traced_seek_to(self, tp, offset):
        state = self._subscriptions.subscription.assignment.state_value(tp)
        emit("seek", tp=_tp(tp), offset=offset, position=state._position if state is not None else None,
             buffered=tp in self._records)
        return seek_to(self, tp, offset)

    Fetcher.seek_to = traced_seek_to

    fetched_records = Fetcher.fetched_records

    async def traced_fetched_records(self, partitions, timeout=0, max_records=None):
        records = await fetched_records(self, partitions, timeout=timeout, max_records=max_records)
        for tp, batch in records.items():
            if batch and "changelog" not in tp.topic:
                emit("aiokafka_records", tp=_tp(tp), first=batch[0].offset, last=batch[-1].offset, count=len(batch))
        return records

    Fetcher.fetched_records = traced_fetched_records

    listener = driver.ConsumerRebalanceListener
    assigned = listener.on_partitions_assigned

    async def traced_assigned(self, partitions):
        partitions = list(partitions)
        emit("assigned", generation=self._thread._ensure_consumer()._coordinator.generation,
             partitions=sorted(_tp(tp) for tp in partitions))
        return await assigned(self, partitions)

    listener.on_partitions_assigned = traced_assigned

    revoked = listener.on_partitions_revoked

    def traced_revoked(self, partitions):
        partitions = list(partitions)
        emit("revoked", partitions=sorted(_tp(tp) for tp in partitions))
        return revoked(self, partitions)

    listener.on_partitions_revoked = traced_revoked


def committed_unhandled(path: str) -> dict[int, dict[tuple[str, int], list[int]]]:
    """Per worker process, per input partition: offsets it committed past without handing them to its agent.

    A process's responsibility starts at the offset its first seek (or first fetch) of the partition
    found, and ends at the highest offset it committed.
    """
    events = [json.loads(line) for line in open(path)]
    result: dict[int, dict[tuple[str, int], list[int]]] = {}
    for pid in sorted({e["pid"] for e in events}):
        mine = [e for e in events if e["pid"] == pid]
        start: dict[tuple[str, int], int] = {}
        handled: dict[tuple[str, int], set[int]] = {}
        committed: dict[tuple[str, int], int] = {}
        for e in mine:
            if e["kind"] == "seek":
                start.setdefault(tuple(e["tp"]), e["offset"])
            elif e["kind"] == "fetched":
                start.setdefault((e["topic"], e["partition"]), e["offset"])
            elif e["kind"] == "handled":
                handled.setdefault((e["topic"], e["partition"]), set()).add(e["offset"])
            elif e["kind"] == "committed" and e["did_commit"]:
                for topic, partition, offset in e["offsets"]:
                    committed[(topic, partition)] = max(offset, committed.get((topic, partition), 0))
        lost = {tp: sorted(set(range(start.get(tp, 0), end)) - handled.get(tp, set())) for tp, end in committed.items()}
        result[pid] = {tp: offsets for tp, offsets in lost.items() if offsets}
    return result


if __name__ == "__main__":  # python -m opengym_streams.offset_trace <trace file>
    import sys

    for pid, lost in committed_unhandled(sys.argv[1]).items():
        print(f"worker {pid}: " + ("committed nothing it did not handle" if not lost else
                                   "; ".join(f"{t}[{p}] committed past {o}" for (t, p), o in sorted(lost.items()))))
