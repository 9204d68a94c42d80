"""State tables: Faust tables of JSON records keyed by str, partitioned like the topics their agents read.

- :func:`partition_of`: the partition a key lands on with the Java/aiokafka default partitioner (murmur2).
- :class:`StateTable`: a change goes to the changelog partition of its key, whatever event made it (a
  tick, a repartitioned request, an in-process hop), and each changed key reaches its changelog once
  per commit, not once per assignment.
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


class StateTable(faust.Table):
    """A component's state: a Faust table whose changelog partition is its key's, written once per commit.

    **Keyed partitions.** Faust writes a change to the partition of the event being processed; a tick
    (published to every partition), an in-process hop or a misrouted message would then scatter one key
    over several changelog partitions and recovery could restore a stale value. Here a change goes to its
    key's murmur2 partition, whatever made it. Faust's own ``use_partitioner=True`` asks the producer for
    the partition, which agent tests do not start; we keep the flag (it makes the rocksdb store look a
    key up in every partition's database) and answer the partition ourselves.

    **Write-behind.** Faust sends one changelog record per assignment: a booking whose state changes five
    times in a second costs five records, five JSON encodings and five trips through Faust's producer
    buffer. Here an assignment or deletion changes the in-memory value at once (reads see it) and marks
    the key dirty; :meth:`changes` hands over the latest value of every dirty key (None: a tombstone),
    which the runtime sends just before it commits (:meth:`opengym_streams.runtime.Runtime.before_commit`),
    after the outputs of the same events are confirmed. A crash loses only changes whose inputs were not
    committed, and those inputs are read again.
    """

    due_index: DueIndex | None = None
    """Set by the runtime for a table with a wake-up function; kept current by every assignment and deletion."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._dirty: set[Any] = set()

    def _new_store(self) -> Any:
        store = super()._new_store()
        if hasattr(store, "_db_for_partition"):  # the rocksdb store (rocksdict)
            self._keep_keys_in_their_partition(store)
        return store

    def _keep_keys_in_their_partition(self, store: Any) -> None:
        """Faust's rocksdb store writes a key into the database of the partition of the event being
        processed, and asserts there is one. Inside a batch there is no current event, and a tick or a
        misrouted record would put the key in another partition's database than its changelog's. Here
        a key is written into its own partition's database, whatever is running."""
        table = self

        def put(key: bytes, value: Any) -> None:
            decoded = table.app.serializers.loads_key(table.key_type, key, serializer=table.key_serializer)
            partition = table.partition_for_key(decoded)
            store._db_for_partition(partition).put(key, value)
            store._key_index[key] = partition

        store._set = put

    def partition_for_key(self, key: Any) -> int:
        return partition_of(key if isinstance(key, str) else key.decode(), self.partitions)

    def on_key_set(self, key: Any, value: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_set(self, key, value)
        if self.due_index is not None:
            self.due_index.put(key, value)

    def on_key_del(self, key: Any) -> None:
        self._dirty.add(key)
        self._sensor_on_del(self, key)
        if self.due_index is not None:
            self.due_index.drop(key)

    def changes(self) -> list[tuple[int, str, Any]]:
        """``(partition, key, value or None)`` of every key changed since the last call, and forget them."""
        dirty, self._dirty = self._dirty, set()
        data = self.data
        return [(self.partition_for_key(key), key, data.get(key)) for key in dirty]

    def written(self, key: Any) -> None:
        """The key's current value was sent to the changelog apart from a commit: not dirty any more."""
        self._dirty.discard(key)

    def encode_change(self, key: Any, value: Any) -> tuple[bytes, bytes | None]:
        """A change as the changelog record Faust's recovery reads back: key and value serialized the
        way Faust's own ``send_changelog`` does (the table's key and value serializers: JSON for both,
        whatever the schema says; a raw key is refused by the recovery with "Expecting value")."""
        dumps = self.app.serializers
        key_bytes = dumps.dumps_key(self.key_type, key, serializer=self.key_serializer)
        if value is None:
            return key_bytes, None
        return key_bytes, dumps.dumps_value(self.value_type, value, serializer=self.value_serializer)

    def changelog_name(self) -> str:
        return self.changelog_topic.get_topic_name()

    def on_changelog_delivered(self, future) -> None:
        """What Faust does when a changelog record is delivered (the rocksdb store keeps the offset it has)."""
        if not future.cancelled() and future.exception() is None:
            self._on_changelog_sent(future)

    def flush_changes(self) -> int:
        """Hand every change to Faust's producer buffer (agent tests, where no runtime sends them)."""
        changes = self.changes()
        for partition, key, value in changes:
            if value is None:
                self.send_changelog(partition, key, value=None, value_serializer="raw")
            else:
                self.send_changelog(partition, key, value)
        return len(changes)


def flush_table_changes(app: faust.App) -> int:
    """Hand every state table's pending changes to Faust's producer buffer; the number of records sent."""
    return sum(table.flush_changes() for table in app.tables.values() if isinstance(table, StateTable))


def make_table(app: faust.App, name: str, *, partitions: int, wake: Wake | None) -> StateTable:
    schema = faust.Schema(key_type=str, key_serializer="raw", value_serializer="json")
    table = StateTable(app, name=name, schema=schema, partitions=partitions, use_partitioner=True,
                       beacon=app.tables.beacon)
    if wake is not None:
        table.due_index = DueIndex(wake, partitions)
    return app.tables.add(table)
