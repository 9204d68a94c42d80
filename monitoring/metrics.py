"""Every Prometheus metric the project exports, declared once, with consistent labels.

Labels: ``component`` (catalog component name), ``event_type`` (record short name), ``outcome``,
``process`` and ``business_transaction`` (catalog names), ``kind`` (anomaly kind).
A test checks that every alert rule names a metric declared here.
"""

from __future__ import annotations


from prometheus_client import Counter, Gauge, Histogram, start_http_server

# ---- every component -------------------------------------------------------------------------

EVENTS_IN = Counter("opengym_events_in_total", "Events consumed, by type.", ["component", "event_type"])
EVENTS_OUT = Counter("opengym_events_out_total", "Events produced, by type.", ["component", "event_type"])
DUPLICATES = Counter("opengym_duplicates_total", "Redelivered events skipped by event_id dedupe.",
                     ["component", "event_type"])
HANDLER_SECONDS = Histogram(
    "opengym_handler_seconds", "Time to handle one event (decode to emit).", ["component", "event_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
OUTCOMES = Counter("opengym_outcomes_total", "Business outcomes (e.g. confirmed, rejected:CLASS_FULL).",
                   ["component", "outcome"])
DEAD_LETTERS = Counter("opengym_dead_letters_total", "Messages sent to the dead-letter topic, by error kind.",
                       ["component", "error_kind"])
LAST_EVENT_TIMESTAMP = Gauge("opengym_last_event_timestamp_seconds",
                             "Wall-clock time the component last handled an event.", ["component"])
TICKS = Counter("opengym_ticks_total", "Clock ticks handled.", ["component"])
IGNORED = Counter("opengym_ignored_total",
                  "Events read and deliberately not acted on, by type and named reason (nothing is dropped silently).",
                  ["component", "event_type", "reason"])
SKIPPED = Counter("opengym_skipped_total",
                  "Records that could not even be dead-lettered and were skipped (left on their topic).",
                  ["component", "error_kind"])
LOCAL_HOPS = Counter("opengym_local_hops_total",
                     "Events handed in process to another agent of the same component (the worker held the "
                     "target partition), instead of a record on an internal topic.", ["component", "event_type"])
CHANGELOG_RECORDS = Counter("opengym_changelog_records_total",
                            "State changes written to table changelogs (one per changed key per commit).",
                            ["component"])
STATES_MADE_DURABLE = Counter("opengym_states_made_durable_total",
                              "States a responder changed, written to their changelog before the outputs "
                              "emitted after them were sent (in-process hops: replay-safe answers).",
                              ["component", "table"])
DECISIONS_PERSISTED = Counter("opengym_tick_decisions_persisted_total",
                              "States a clock tick decided (a timeout), written to their changelog before "
                              "their events were sent (replay-safe decisions on an absence).",
                              ["component", "agent"])
PARKED = Counter("opengym_parked_total",
                 "Events kept until the state they need arrives (a replay read them before it).",
                 ["component", "event_type"])
UNPARKED = Counter("opengym_unparked_total", "Parked events handled once their state arrived.",
                   ["component", "event_type"])
UP = Gauge("opengym_component_up", "1 while the component's worker runs.", ["component"])
CONSUMER_LAG = Gauge("opengym_consumer_lag_messages",
                     "Messages between the committed offset and the end of each input partition.",
                     ["component", "topic", "partition"])

# ---- the observer ----------------------------------------------------------------------------

OBSERVED = Counter("opengym_observer_events_total", "Events the observer saw, by type.", ["event_type"])
NESTED_ROUND_TRIP = Histogram(
    "opengym_nested_round_trip_seconds", "Nested request to reply latency, per pair.", ["process"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge("opengym_transactions_in_flight", "Open transactions, per business transaction.",
                  ["business_transaction"])
OLDEST_OPEN_SECONDS = Gauge("opengym_oldest_open_transaction_age_seconds",
                            "Age of the oldest open process instance, per process.",
                            ["business_transaction", "process"])
ANOMALIES = Counter("opengym_anomalies_total", "Anomalies detected, by kind and process, with the component "
                    "that owns the process at fault (alerts route by it).",
                    ["kind", "business_transaction", "process", "owner"])
OBSERVER_STATE = Gauge("opengym_observer_state_transactions",
                       "Transactions the observer holds in state (open, and closed ones within retention).")

def metric_names() -> set[str]:
    """Names as Prometheus exposes them (counters gain _total, histograms _bucket/_sum/_count)."""
    names: set[str] = set()
    for value in list(globals().values()):
        if isinstance(value, (Counter, Gauge, Histogram)):
            base = value._name
            if isinstance(value, Counter):
                names.update({base + "_total", base + "_created"})
            elif isinstance(value, Histogram):
                names.update({base + "_bucket", base + "_sum", base + "_count", base + "_created"})
            else:
                names.add(base)
    return names


DEAD_LETTER_KINDS = ("NOT_FRAMED", "UNKNOWN_SCHEMA_ID", "UNKNOWN_RECORD", "UNDECODABLE", "CONTRACT_VIOLATION",
                     "HANDLER_ERROR", "DUPLICATE_CONFLICT", "OUTPUT_TOO_LARGE")


def initialise(component: str, catalog=None) -> None:
    """Create the labelled series an alert computes ``increase()`` or ``rate()`` over, at zero.

    Prometheus cannot see an increase in a series whose first sample already counts the event: a
    dead-letter counter born at 3 would never fire the dead-letter alert. With the process ``catalog``
    (the observer's), its anomaly series too.
    """
    for kind in DEAD_LETTER_KINDS:
        DEAD_LETTERS.labels(component, kind)
        SKIPPED.labels(component, kind)
    if catalog is not None:
        for event in sorted(catalog.events):
            OBSERVED.labels(event)
        for business_transaction, process, kind, owner in anomaly_series(catalog):
            ANOMALIES.labels(kind, business_transaction, process, owner)


def anomaly_series(catalog) -> list[tuple[str, str, str, str]]:
    """(business transaction, process, anomaly kind, owner) for every anomaly the catalog makes possible."""
    from opengym_streams.catalog import Choreography, DownstreamProcess, NestedPair

    kinds = {
        NestedPair: ("NESTED_TIMEOUT", "LATE_REPLY", "REPLY_WITHOUT_REQUEST"),
        DownstreamProcess: ("DOWNSTREAM_NOT_STARTED", "DOWNSTREAM_NOT_COMPLETED"),
        Choreography: ("CHAIN_STALLED",),
    }
    series = []
    for bt in catalog.transactions:
        for process in bt.processes():
            # The owner at fault: a pair's participant, a downstream process's owner, or for a chain the
            # producer of each hop that can fail to come (every hop after the first).
            owners = ({f.producer for f in process.facts[1:]} if isinstance(process, Choreography)
                      else {getattr(process, "owner", "")})
            for cls, names in kinds.items():
                if isinstance(process, cls):
                    series += [(bt.name, process.name, kind, owner) for kind in names for owner in sorted(owners)]
    return series


def serve(component: str, port: int, catalog=None, addr: str = "127.0.0.1") -> int | None:
    """Expose /metrics for a worker on ``port`` at ``addr`` (port 0: not at all)."""
    initialise(component, catalog)
    if not port:
        return None
    start_http_server(port, addr=addr)
    UP.labels(component).set(1)
    return port
