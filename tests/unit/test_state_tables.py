"""A state table's changelog reads back what the runtime writes to it (keys raw, values JSON)."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP
from faust.types.tuples import Message

from opengym_streams.tables import make_table


def test_recovery_decodes_the_raw_keys_the_runtime_writes_to_a_changelog(tmp_path):
    async def scenario():
        app = faust.App("state-tables-test", store="memory://", datadir=str(tmp_path), autodiscover=False)
        table = make_table(app, "bookings", partitions=4, wake=None)
        # Runtime._send_table_changes: key.encode(), the value as compact JSON.
        written = Message(table.changelog_name(), 1, 0, 0.0, 0, None, key=b"booking-1", value=b'{"phase":"A"}',
                          checksum=None, tp=TP(table.changelog_name(), 1))
        event = await table.changelog_topic.decode(written, propagate=True)
        return event.key, event.value

    assert asyncio.run(scenario()) == ("booking-1", {"phase": "A"})
