"""opengym dlq list | show | redrive: the components' dead letters, decoded, and their redrive to the
topic they came from (see :mod:`streams.deadletters`)."""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime, timezone


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dlq", help="list, show and redrive the components' dead letters",
        description="Reads every component's dead-letter topic (and the record of redrives beside it), "
                    "decodes each original message where it decodes, and re-publishes chosen ones to their "
                    "original topic. Redriving is idempotent: a dead letter redriven once is never sent again.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per dead letter, newest first")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines instead of text")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one dead letter in full: reason, source, decoded payload, history")
    show.add_argument("which", help="its id (event_id) or TOPIC:PARTITION:OFFSET on the dead-letter topic")
    show.set_defaults(handler=_show)
    again = actions.add_parser(
        "redrive", help="re-publish chosen dead letters to their original topic and record it",
        description="Chooses dead letters by the filters (all given filters must match), re-publishes each "
                    "one's original key and bytes to the topic it came from, and records it on the "
                    "component's redrives topic. Letters redriven before are reported and not sent again.")
    _filters(again)
    again.add_argument("--all", action="store_true", help="every dead letter not redriven yet (no filter needed)")
    again.add_argument("--dry-run", action="store_true", help="say what would be redriven, send nothing")
    again.set_defaults(handler=_redrive)


def _filters(parser) -> None:
    parser.add_argument("--component", help="only this component's dead letters")
    parser.add_argument("--kind", help="only this error kind (NOT_FRAMED, UNKNOWN_SCHEMA_ID, ..., HANDLER_ERROR)")
    parser.add_argument("--reason", help="only letters whose reason contains this text")
    parser.add_argument("--since", type=_when, help="dead-lettered at or after (epoch ms or ISO 8601)")
    parser.add_argument("--until", type=_when, help="dead-lettered at or before (epoch ms or ISO 8601)")
    parser.add_argument("--id", action="append", dest="ids", help="a dead letter's id (repeatable)")
    parser.add_argument("--offset", action="append", dest="offsets", type=_offset,
                        help="TOPIC:PARTITION:OFFSET of a dead letter on its dead-letter topic (repeatable)")
    parser.add_argument("--correlation-id", help="only this business transaction's dead letters")


def _when(text: str) -> int:
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _offset(text: str) -> tuple[str, int, int]:
    topic, partition, offset = text.rsplit(":", 2)
    return topic, int(partition), int(offset)


def _book():
    from opengym_streams.codec import AvroCodec
    from opengym_streams.deadletters import read_book
    from opengym_streams.system import load
    from opengym_streams.topic import topic_name

    topics = load().topics

    codec = AvroCodec(auto_register=False)
    book = read_book([topic_name(t) for t in topics.dead_letters.values()],
                     [topic_name(t) for t in topics.redrives.values()], codec)
    return book, codec


def _chosen(args, book):
    from opengym_streams.deadletters import select

    return select(book.all(), component=args.component, error_kind=args.kind, reason=args.reason,
                  since=args.since, until=args.until, ids=args.ids, offsets=args.offsets,
                  correlation_id=args.correlation_id)


def _at(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _line(entry) -> str:
    d = entry.letter
    state = (f"redriven {_at(entry.redriven.occurred_at)} -> {entry.redriven.target_topic}"
             f"[{entry.redriven.target_partition}]@{entry.redriven.target_offset}" if entry.redriven else "pending")
    again = f", failed again after {len(entry.history)} redrive(s)" if entry.history else ""
    return (f"{_at(d.occurred_at)}  {d.component:<16} {d.error_kind:<18} {entry.topic}:{entry.partition}:{entry.offset}"
            f"  from {d.source_topic}[{d.source_partition}]@{d.source_offset}  {d.correlation_id}  [{state}{again}]"
            f"\n    {d.reason}")


def _list(args) -> int:
    book, _ = _book()
    chosen = _chosen(args, book)
    for entry in chosen:
        print(json.dumps(entry.summary()) if args.json else _line(entry))
    if not args.json:
        print(f"{len(chosen)} dead letter(s); {sum(1 for e in chosen if e.redriven is None)} not redriven")
    return 0


def _show(args) -> int:
    book, _ = _book()
    letters = book.all()
    if args.which.count(":") >= 2:
        found = [e for e in letters if (e.topic, e.partition, e.offset) == _offset(args.which)]
    else:
        found = [e for e in letters if e.id == args.which]
    if not found:
        print(f"opengym dlq show: no dead letter {args.which!r}", file=sys.stderr)
        return 1
    print(json.dumps(found[0].summary(), indent=2))
    return 0


def _redrive(args) -> int:
    from opengym_streams.codec import AvroCodec
    from opengym_streams.deadletters import redrive
    from opengym_streams.kafka import producer

    selective = any([args.component, args.kind, args.reason, args.since, args.until, args.ids, args.offsets,
                     args.correlation_id])
    if not selective and not args.all:
        print("opengym dlq redrive: choose dead letters with a filter, or pass --all", file=sys.stderr)
        return 2
    from opengym_streams.system import load
    from opengym_streams.topic import topic_name

    topics = load().topics

    book, _ = _book()
    chosen = _chosen(args, book)
    if args.dry_run:
        for entry in chosen:
            print(("would redrive  " if entry.redriven is None else "already redriven  ") + _line(entry))
        return 0
    result = redrive(chosen, book=book, producer=producer(), encode=AvroCodec().encode,
                     redrive_topics={c: topic_name(t) for c, t in topics.redrives.items()},
                     redriven_by=f"opengym dlq ({getpass.getuser()})")
    for entry in result.sent:
        print(f"redriven  {_line(entry)}")
    for entry in result.already:
        print(f"already redriven, not sent again  {_line(entry)}")
    for entry, why in result.skipped:
        print(f"skipped ({why})  {_line(entry)}")
    print(result.line())
    return 1 if result.skipped else 0
