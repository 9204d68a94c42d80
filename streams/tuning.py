"""Faust/aiokafka settings that Faust does not expose, applied once per worker process.

**Fetch wait.** Faust creates its aiokafka consumer with a hard-coded ``fetch_max_wait_ms=1500``.
aiokafka sends one fetch per broker for the partitions that have nothing buffered; a partition whose
records were just handed over joins only the *next* request, which waits while the in-flight one sits at
the broker for up to ``fetch_max_wait_ms`` when the other partitions are quiet. At a moderate rate, every
hop of a pipeline then waits a few hundred milliseconds (we measured 200 to 600 ms median per hop and a 2.2 s
request-to-terminal p50 at 50 bookings/s). ``OPENGYM_FETCH_MAX_WAIT_MS`` (default 20) bounds that wait.
The cost is more fetch requests on an idle system: one per worker every 20 ms.
"""

from __future__ import annotations

import os

_applied = False


def fetch_max_wait_ms() -> int:
    return int(os.environ.get("OPENGYM_FETCH_MAX_WAIT_MS", "20"))


def apply() -> None:
    global _applied
    if _applied:
        return
    from faust.transport.drivers import aiokafka as faust_aiokafka

    create = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer

    def create_worker_consumer(self, transport):
        consumer = create(self, transport)
        # Read by AIOKafkaConsumer.start() when it builds its Fetcher, so setting it here takes effect.
        consumer._fetch_max_wait_ms = fetch_max_wait_ms()
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer
    _applied = True
