"""Consumer lag of a Faust worker, exported as ``opengym_consumer_lag_messages``.

Faust keeps the committed offset of every assigned partition and the consumer's view of each
partition's high watermark; lag is their difference, per input topic and partition. Changelog
partitions are left out: a standby replica's "lag" is not work waiting for the component.
"""

from __future__ import annotations

from opengym_streams.monitoring.metrics import CONSUMER_LAG


def record_consumer_lag(app, component: str) -> dict[tuple[str, int], int]:
    consumer = app.consumer
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog"):
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not fetched yet after an assignment
            continue
        if highwater is None:
            continue
        committed = consumer._committed_offset.get(tp)
        lag = max(int(highwater) - int(committed if committed is not None else 0), 0)
        lags[(tp.topic, tp.partition)] = lag
        CONSUMER_LAG.labels(component, tp.topic, str(tp.partition)).set(lag)
    return lags
