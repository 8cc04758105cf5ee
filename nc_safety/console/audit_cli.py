"""`nc-safety audit`: verify, show and export the audit trail. Needs no ROS.

Exit codes: 0 success, 1 the chain is broken (verify, or export without
`--allow-unverified`), 2 invalid arguments or a file that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from mcap.writer import Writer

from nc_safety.core.audit import AuditError, AuditQuery, AuditReader, AuditRecord, verify_file
from nc_safety.core.canonical import canonical_json

MCAP_SCHEMA_NAME = "nc_safety/audit_record"
MCAP_TOPIC_PREFIX = "/nc_safety/audit/"
RECORD_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nc_safety audit record",
    "type": "object",
    "required": ["seq", "wall_time", "ros_time", "kind", "payload", "prev_hash", "hash"],
    "properties": {
        "seq": {"type": "integer", "description": "sequence number, 1 for the first record"},
        "wall_time": {"type": "number", "description": "wall time, seconds since the Unix epoch"},
        "ros_time": {"type": ["number", "null"], "description": "ROS time, seconds"},
        "kind": {"type": "string"},
        "payload": {"type": "object"},
        "prev_hash": {"type": "string", "description": "SHA-256 of the previous record, hex"},
        "hash": {"type": "string", "description": "SHA-256 of this record, hex"},
    },
}


def parse_time(text: str) -> float:
    """Parse seconds since the Unix epoch or an ISO 8601 time (local time when no zone is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use seconds since the Unix epoch or ISO 8601 such as 2026-01-08T17:22:58"
        ) from error
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


def parse_head(text: str) -> tuple[int, str]:
    seq_text, _, digest = text.partition(":")
    if not seq_text.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(
            f"invalid head {text!r}: use SEQ:HASH as printed by `nc-safety audit verify`"
        )
    return int(seq_text), digest.lower()


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=parse_time, help="earliest wall time (epoch seconds or ISO 8601)")
    parser.add_argument("--until", type=parse_time, help="latest wall time (epoch seconds or ISO 8601)")
    parser.add_argument("--kind", action="append", default=[], help="record kind; repeat for several")
    parser.add_argument("--requester", help="requester of the command")
    parser.add_argument("--operator", help="operator who requested or accepted an override")
    parser.add_argument("--rule", help="rule id or dotted prefix, for example motion.obstacle")
    parser.add_argument("--limit", type=int, help="show at most this many records")


def _query(args: argparse.Namespace) -> AuditQuery:
    return AuditQuery(
        since=args.since,
        until=args.until,
        kinds=tuple(args.kind),
        requester=args.requester,
        operator=args.operator,
        rule=args.rule,
        limit=args.limit,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nc-safety audit", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser("verify", help="check the hash chain; prints the first bad seq")
    verify.add_argument("file", type=Path)
    verify.add_argument(
        "--expect-head",
        type=parse_head,
        metavar="SEQ:HASH",
        help="a head recorded earlier that must still be there",
    )

    show = commands.add_parser("show", help="print records that match the filters")
    show.add_argument("file", type=Path)
    _add_filters(show)
    show.add_argument("--json", action="store_true", help="print one JSON record per line")

    export = commands.add_parser("export", help="write records to JSONL or MCAP")
    export.add_argument("file", type=Path)
    export.add_argument("--jsonl", type=Path, metavar="OUT", help="JSON Lines output file")
    export.add_argument("--mcap", type=Path, metavar="OUT", help="MCAP output file (JSON messages)")
    export.add_argument(
        "--allow-unverified", action="store_true", help="export even when the hash chain is broken"
    )
    _add_filters(export)
    return parser


def _summary(record: AuditRecord) -> str:
    moment = datetime.fromtimestamp(record.wall_time, tz=timezone.utc).isoformat(timespec="milliseconds")
    payload = record.payload if isinstance(record.payload, dict) else {}
    parts = [f"{record.seq:>8}", moment, record.kind]
    command = payload.get("command")
    if isinstance(command, dict):
        parts.append(f"requester={command.get('requester')}")
    elif "requester" in payload:
        parts.append(f"requester={payload['requester']}")
    if "verdict" in payload:
        parts.append(f"verdict={payload['verdict']}")
    reasons = payload.get("reasons")
    if isinstance(reasons, list) and reasons:
        rules = ",".join(str(reason.get("rule_id")) for reason in reasons if isinstance(reason, dict))
        parts.append(f"rules={rules}")
    elif "rule_id" in payload:
        parts.append(f"rule={payload['rule_id']}")
    return "  ".join(parts)


def run_verify(args: argparse.Namespace, out: TextIO) -> int:
    result = verify_file(args.file, expected_head=args.expect_head)
    if result.ok:
        print(
            f"OK {args.file}: {result.records_checked} records, head {result.head_seq}:{result.head_hash}",
            file=out,
        )
        return 0
    print(f"BROKEN {args.file}: first bad seq {result.first_bad_seq}: {result.problem}", file=out)
    print(f"last good record: {result.head_seq}:{result.head_hash}", file=out)
    return 1


def run_show(args: argparse.Namespace, out: TextIO) -> int:
    with AuditReader(args.file) as reader:
        count = 0
        for record in reader.records(_query(args)):
            print(canonical_json(record.to_json()) if args.json else _summary(record), file=out)
            count += 1
    if not args.json:
        print(f"{count} record(s)", file=out)
    return 0


def write_jsonl(records: Iterable[AuditRecord], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(canonical_json(record.to_json()) + "\n")
            count += 1
    return count


def write_mcap(records: Iterable[AuditRecord], path: Path) -> int:
    """Write one JSON-encoded channel per record kind, `log_time` the wall time, `publish_time` the ROS time."""
    count = 0
    with path.open("wb") as stream:
        writer = Writer(stream)
        writer.start(profile="", library="nc_safety audit export")
        schema_id = writer.register_schema(
            name=MCAP_SCHEMA_NAME, encoding="jsonschema", data=canonical_json(RECORD_JSON_SCHEMA).encode()
        )
        channels: dict[str, int] = {}
        for record in records:
            channel_id = channels.get(record.kind)
            if channel_id is None:
                channel_id = writer.register_channel(
                    topic=MCAP_TOPIC_PREFIX + record.kind, message_encoding="json", schema_id=schema_id
                )
                channels[record.kind] = channel_id
            log_time = int(record.wall_time * 1e9)
            publish_time = log_time if record.ros_time is None else int(record.ros_time * 1e9)
            writer.add_message(
                channel_id=channel_id,
                log_time=log_time,
                publish_time=publish_time,
                data=canonical_json(record.to_json()).encode(),
                # MCAP sequence numbers are 32 bits wide; the full seq is in the message.
                sequence=record.seq % 2**32,
            )
            count += 1
        writer.finish()
    return count


def run_export(args: argparse.Namespace, out: TextIO) -> int:
    if (args.jsonl is None) == (args.mcap is None):
        print("nc-safety audit export: give exactly one of --jsonl OUT or --mcap OUT", file=sys.stderr)
        return 2
    result = verify_file(args.file)
    if not result.ok:
        print(f"BROKEN {args.file}: first bad seq {result.first_bad_seq}: {result.problem}", file=sys.stderr)
        if not args.allow_unverified:
            print("not exported; pass --allow-unverified to export the file as it is", file=sys.stderr)
            return 1
    with AuditReader(args.file) as reader:
        records = reader.records(_query(args))
        if args.jsonl is not None:
            count, target = write_jsonl(records, args.jsonl), args.jsonl
        else:
            count, target = write_mcap(records, args.mcap), args.mcap
    print(f"exported {count} record(s) to {target}", file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    handlers = {"verify": run_verify, "show": run_show, "export": run_export}
    try:
        return handlers[args.command](args, stream)
    except (AuditError, OSError) as error:
        print(f"nc-safety audit {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
