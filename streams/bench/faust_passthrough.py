"""A bare Faust pass-through: one agent, raw bytes in, the same bytes out, no state, no codec, no runtime.

The limit beside the pipeline (``opengym bench pipeline``): what one record costs in Faust alone when
it is read in batches (``take_events``) and written straight to the producer, the way a team would
write a pass-through with Faust. Run as a real worker::

    OPENGYM_BENCH_PASSTHROUGH_IN=<topic> OPENGYM_BENCH_PASSTHROUGH_OUT=<topic> \\
        faust -A opengym_streams.bench.faust_passthrough worker -l warn --without-web

The benchmark fills the input topic, waits until the output holds as many records and reads the
worker's CPU time: CPU per record hop, and per record operation (one read plus one write).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import faust

from opengym_streams.bench.baselines import PassthroughConfig
from opengym_streams.security import faust_broker_kwargs
from opengym_streams.settings import Settings, from_env

settings = Settings.from_env()
config = from_env(PassthroughConfig)
IN, OUT = config.source, config.sink
BATCH = 1000
WITHIN_S = 0.005

datadir = Path(settings.home) / "faust" / f"bench-passthrough-{uuid.uuid4().hex[:8]}"
datadir.mkdir(parents=True, exist_ok=True)
app = faust.App(f"bench-passthrough-{IN}", broker=f"kafka://{settings.bootstrap}", store="memory://",
                topic_partitions=4, topic_replication_factor=1, autodiscover=False, web_enabled=False,
                datadir=str(datadir), consumer_auto_offset_reset="earliest", producer_acks=-1,
                producer_linger=settings.producer_linger_ms / 1000.0, broker_commit_interval=1.0,
                **faust_broker_kwargs())  # the secured stack's SASL/TLS, when the environment asks for it
source = app.topic(IN, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


@app.agent(source, concurrency=1)
async def pass_through(stream):
    producer = app.producer
    async for events in stream.take_events(BATCH, WITHIN_S):
        for event in events:
            message = event.message
            await producer.send(OUT, message.key, message.value, None, None, None)
        yield len(events)
