"""`itil contracts` and `itil deadletter`: the message contracts as documents, and the refused messages."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_contracts(args: argparse.Namespace) -> None:
    """Print the message contracts (AsyncAPI or JSON Schema), or write them into a folder."""
    from streams.contracts_export import asyncapi_document, json_schemas, write_documents

    if args.out is not None:
        for path in write_documents(Path(args.out), args.format):
            print(path)
        return
    document: Any
    if args.format == "asyncapi":
        document = asyncapi_document()
    elif args.format == "jsonschema":
        document = json_schemas()
    else:
        document = {"asyncapi": asyncapi_document(), "jsonschema": json_schemas()}
    print(json.dumps(document, indent=2, ensure_ascii=False))


def cmd_deadletter(args: argparse.Namespace) -> None:
    """List the dead letters, or replay chosen ones (after a fix); replays need the store."""
    from itil.config import ConfigError, Settings
    from projections.db import Database
    from streams.deadletters import DeadLetterReplays, list_dead_letters, read_dead_letters, replay_dead_letters

    try:
        settings = Settings.from_env()
    except ConfigError as e:
        sys.exit(f"itil: {e}")
    if not settings.kafka_bootstrap_servers:
        sys.exit(f"itil deadletter {args.action}: set KAFKA_BOOTSTRAP_SERVERS")
    db = Database.from_store_env(settings.store_env)
    replays = DeadLetterReplays(db)
    replays.create_tables()
    letters = read_dead_letters(settings.kafka_bootstrap_servers, settings.deadletter_topic)
    if args.action == "list":
        print(json.dumps(list_dead_letters(letters, replays, args.limit), indent=2, ensure_ascii=False))
        return
    from application.app import ItilApplication
    from streams.intake import DEAD, IntakeProcessor

    processor = IntakeProcessor(ItilApplication(env=settings.store_env), db)
    processor.create_tables()
    results = replay_dead_letters(letters, processor, replays, None if args.all else args.ids)
    print(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False))
    if any(r.status == DEAD for r in results):
        sys.exit(1)


def register_intake_cli(sub: Any) -> None:
    """Add `contracts` and `deadletter` to the `itil` command's subparsers."""
    contracts = sub.add_parser("contracts", help=cmd_contracts.__doc__)
    contracts.add_argument("--format", choices=["asyncapi", "jsonschema", "all"], default="asyncapi")
    contracts.add_argument("--out", help="write the documents into this folder instead of printing them")
    contracts.set_defaults(func=cmd_contracts)
    deadletter = sub.add_parser("deadletter", help=cmd_deadletter.__doc__)
    actions = deadletter.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the refused messages, newest last, with their replays")
    listing.add_argument("--limit", type=int, default=50, help="show the newest N (default 50)")
    listing.set_defaults(func=cmd_deadletter)
    replay = actions.add_parser("replay", help="run refused messages again after a fix; each succeeds once")
    chosen = replay.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", dest="ids", action="append", help="a dead letter's id (or a unique prefix)")
    chosen.add_argument("--all", action="store_true", help="every dead letter not yet replayed successfully")
    replay.set_defaults(func=cmd_deadletter)
