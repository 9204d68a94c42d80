"""State tables: Faust tables of JSON records keyed by str, partitioned like the topics their agents read.

- :func:`partition_of`: the partition a key lands on with the Java/aiokafka default partitioner (murmur2).
- :class:`KeyPartitionedTable`: a change goes to the changelog partition of its key, whatever event
  made it (a tick, a repartitioned request).
- :class:`WriteBehindTable`: each changed key reaches its changelog once per commit, not once per
  assignment.
- :class:`DueIndex`: per partition, the wake-up time of each state that wants a tick, so a tick visits
  only what is due instead of the whole history a table keeps for dedupe.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import faust
from aiokafka.partitioner import murmur2


@functools.lru_cache(maxsize=1 << 20)
def partition_of(key: str, partitions: int = 4) -> int:
    """The partition a key lands on with the Java/aiokafka default partitioner (murmur2)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


Wake = Callable[[dict], "int | None"]
"""The earliest time (ms) a state wants a clock tick, or None for never (a finished booking)."""


class DueIndex:
    """Per partition, the wake-up time of each state that wants one, so a tick visits only what is due.

    A table keeps every booking it ever saw (for dedupe), so scanning it on every tick costs O(history)
    per second. The index holds only the states with a wake-up time. It is rebuilt from the table
    when the consumer generation changes (after a rebalance the table holds the recovered state of the
    partitions this worker now owns, written by recovery without passing through the table's set hook)
    and kept up to date on every assignment and deletion through the table.
    """

    def __init__(self, wake: Wake, partitions: int):
        self.wake = wake
        self.partitions = partitions
        self.generation: int | None = None
        self.wakes: dict[int, dict[str, int]] = {}

    def refresh(self, generation: int, table) -> None:
        if generation == self.generation:
            return
        self.wakes = {p: {} for p in range(self.partitions)}
        for key, state in list(table.items()):
            self.put(key, state)
        self.generation = generation

    def due(self, partition: int, now: int) -> list[str]:
        return [key for key, wake in self.wakes.get(partition, {}).items() if wake <= now]

    def put(self, key: str, state: dict | None) -> None:
        wake = self.wake(state) if state is not None else None
        if wake is None:
            self.drop(key)
        else:
            self.wakes.setdefault(partition_of(key, self.partitions), {})[key] = wake

    def drop(self, key: str) -> None:
        self.wakes.get(partition_of(key, self.partitions), {}).pop(key, None)


class KeyPartitionedTable(faust.Table):
    """A table whose changelog partition is its key's murmur2 partition, whatever event changed it.

    Faust writes a change to the partition of the event being processed; a tick (published to every
    partition) or a misrouted message would then scatter one key over several changelog partitions
    and recovery could restore a stale value. Faust's own ``use_partitioner=True`` asks the producer
    for the partition, which agent tests do not start; we keep the flag (it makes the rocksdb store
    look a key up in every partition's database) and answer the partition ourselves.
    """

    due_index: DueIndex | None = None
    """Set by the runtime for a table with a wake-up function; kept current by every assignment and deletion."""

    def partition_for_key(self, key: Any) -> int:
        return partition_of(key if isinstance(key, str) else key.decode(), self.partitions)

    def on_key_set(self, key: Any, value: Any) -> None:
        self._log_set(key, value)
        if self.due_index is not None:
            self.due_index.put(key, value)

    def on_key_del(self, key: Any) -> None:
        self._log_del(key)
        if self.due_index is not None:
            self.due_index.drop(key)

    def _log_set(self, key: Any, value: Any) -> None:
        super().on_key_set(key, value)  # Faust: one changelog record now

    def _log_del(self, key: Any) -> None:
        super().on_key_del(key)


class WriteBehindTable(KeyPartitionedTable):
    """A :class:`KeyPartitionedTable` that writes each changed key to its changelog once per commit.

    Faust sends one changelog record per assignment; a transaction whose state changes five times in a
    second costs five records (and five JSON encodings, five produce appends, five records the broker
    stores and compaction later drops). Here an assignment or deletion changes the in-memory value at
    once (reads see it) and marks the key dirty; :func:`flush_table_changes` sends the latest value of
    every dirty key (a tombstone if it is gone). ``streams.tuning`` calls it at the start of every
    offset commit, before Faust flushes the producer and commits, and a rebalance commits before it
    gives partitions away, so a committed input offset never runs ahead of the state it produced; a
    crash loses only changes whose inputs were not committed, and those inputs are read again.
    The price is a wider replay window: after a crash, everything since the last commit is handled
    again from the recovered state, so outputs of that second are published again (same event ids,
    which consumers dedupe). Without it only the event being handled at the crash is replayed. The
    observer, whose only outputs are anomalies, uses it; components do not unless
    ``OPENGYM_TABLE_WRITE_BEHIND=1`` (``0`` turns it off everywhere).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._dirty: set[Any] = set()

    def _log_set(self, key: Any, value: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_set(self, key, value)

    def _log_del(self, key: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_del(self, key)

    def flush_changes(self) -> int:
        """Send the current value (or a tombstone) of every key changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            value = self.data.get(key)
            if value is None:
                self.send_changelog(self.partition_for_key(key), key, value=None, value_serializer="raw")
            else:
                self.send_changelog(self.partition_for_key(key), key, value)
        return len(dirty)


def flush_table_changes(app: faust.App) -> int:
    """Hand every write-behind table's pending changes to the producer; the number of records sent."""
    return sum(table.flush_changes() for table in app.tables.values() if isinstance(table, WriteBehindTable))


def make_table(app: faust.App, name: str, *, partitions: int, write_behind: bool, wake: Wake | None) -> faust.Table:
    schema = faust.Schema(key_type=str, key_serializer="raw", value_serializer="json")
    kind = WriteBehindTable if write_behind else KeyPartitionedTable
    table = kind(app, name=name, schema=schema, partitions=partitions, use_partitioner=True,
                 beacon=app.tables.beacon)
    if wake is not None:
        table.due_index = DueIndex(wake, partitions)
    return app.tables.add(table)
