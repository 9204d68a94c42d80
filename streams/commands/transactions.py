"""opengym transactions: the open, anomalous and recently closed business transactions, filtered.

Asked of a running observer (its JSON API, :mod:`streams.ui`); when none answers for these topics, every
fact topic is read from the start and judged now with the same engine and catalog, saying so on stderr.
A list cut at ``--limit`` says how many matched in all.
"""

from __future__ import annotations

import json
import sys

from opengym_streams.ui.pages import at, span


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "transactions", help="list business transactions: open, anomalous, recently closed",
        description="Lists the transactions the observer holds (open ones, anomalous ones, and closed ones "
                    "still within its retention), newest first, from a running observer's API or, without "
                    "one, from the fact topics.")
    parser.add_argument("--status", choices=("open", "anomalous", "closed"), help="only these")
    parser.add_argument("--process", help="only transactions in which this catalog process started")
    parser.add_argument("--kind", help="only transactions with an anomaly of this kind")
    parser.add_argument("--min-age-s", type=float, help="only open transactions at least this old (seconds)")
    parser.add_argument("--search", "-q", help="a correlation id or a business id (booking, member, class, "
                                               "settlement...), or a part of one")
    parser.add_argument("--limit", type=int, default=50, help="rows to print at most (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--from-topics", action="store_true", help="read the topics even when an observer runs")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds the topic scan may take before it fails (default %(default)s)")
    parser.set_defaults(handler=_transactions)


def _query(args) -> dict:
    return {"status": args.status, "process": args.process, "kind": args.kind, "min_age_s": args.min_age_s,
            "q": args.search, "limit": args.limit}


def _transactions(args) -> int:
    from opengym_streams.settings import get_settings
    from opengym_streams.ui.client import ask, observer_url

    data = None
    if not args.from_topics:
        answer = ask("/api/transactions", _query(args), prefix=get_settings().topic_prefix)
        if answer.why_not is None and answer.status == 200:
            data = answer.data
            print(f"opengym transactions: from the observer at {observer_url()}", file=sys.stderr)
        else:
            print(f"opengym transactions: {answer.why_not or answer.data}; reading the topics instead",
                  file=sys.stderr)
    if data is None:
        from opengym_streams.kafka_read import ReadTimeout

        try:
            data = from_topics(args)
        except ReadTimeout as exc:
            print(f"opengym transactions: {exc}; nothing printed rather than a part (raise --timeout)",
                  file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for r in data["rows"]:
        kinds = " ".join(a["kind"] for a in r["anomalies"]) or "-"
        age = span(r["age_s"] * 1000) if r["age_s"] is not None else "-"
        print(f"{r['correlation_id']:<40} {r['status']:<10} {at(r['first_fact_at'], True)}  {age:>9}  {kinds}")
    cut = f" ({data['shown']} shown; raise --limit for more)" if data["shown"] < data["matched"] else ""
    print(f"{data['matched']} matching of {data['held']} transactions{cut}")
    return 0


def from_topics(args) -> dict:
    """The same answer computed here: every fact read, each transaction judged now."""
    from opengym_streams.codec import AvroCodec
    from opengym_streams.event import now_ms
    from opengym_streams.kafka_read import read_to_end
    from opengym_streams.observe import observed_topics
    from opengym_streams.observer import Observer, ObserverConfig
    from opengym_streams.system import load
    from opengym_streams.topic import topic_name
    from opengym_streams.ui import model

    system = load()
    catalog = system.processes()
    SOURCES = observed_topics(system, catalog)
    observer = Observer(catalog, ObserverConfig.from_env())
    codec = AvroCodec(auto_register=False)
    states: dict[str, dict] = {}
    for msg in read_to_end([topic_name(t) for t in SOURCES], timeout=args.timeout):
        try:
            event = codec.decode(msg.value())
        except Exception:
            continue
        outcome = observer.on_event(states.get(event.correlation_id), event, 0,
                                    (msg.topic(), msg.partition(), msg.offset()))
        if outcome.relevant and outcome.state is not None:
            states[event.correlation_id] = outcome.state
    now = now_ms()
    for cid, state in states.items():
        observer.on_tick(state, cid, now)  # marks what is overdue now; the state is kept whatever its age
    filters = model.Filters(process=args.process, kind=args.kind, status=args.status, min_age_s=args.min_age_s,
                            q=args.search, limit=args.limit)
    return model.transactions(observer, states.items(), now, filters)
