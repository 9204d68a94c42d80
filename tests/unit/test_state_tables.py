"""A state table's changelog reads back what the runtime writes to it (the encoding Faust's own
``send_changelog`` uses: JSON keys and values, so changelogs written before the batched runtime recover too)."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP
from faust.types.tuples import Message

from opengym_streams.tables import make_table


def test_recovery_decodes_what_the_runtime_writes_to_a_changelog_and_what_faust_wrote_before(tmp_path):
    async def scenario():
        app = faust.App("state-tables-test", store="memory://", datadir=str(tmp_path), autodiscover=False)
        table = make_table(app, "bookings", partitions=4, wake=None)
        decoded = []
        ours = table.encode_change("booking-1", {"phase": "A"})  # Runtime._send_table_changes
        faust_before = (b'"booking-2"', b'{"phase": "B"}')  # written by Faust's send_changelog
        for offset, (key, value) in enumerate((ours, faust_before)):
            written = Message(table.changelog_name(), 1, offset, 0.0, 0, None, key=key, value=value,
                              checksum=None, tp=TP(table.changelog_name(), 1))
            event = await table.changelog_topic.decode(written, propagate=True)
            decoded.append((event.key, event.value))
        tombstone = table.encode_change("booking-1", None)
        return decoded, tombstone

    decoded, tombstone = asyncio.run(scenario())
    assert decoded == [("booking-1", {"phase": "A"}), ("booking-2", {"phase": "B"})]
    assert tombstone == (b'"booking-1"', None)
