"""The `tokenmeter` command: argument parsing and output; the work is in the modules beside it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tokenmeter.core import MeteringConfigError
from tokenmeter.nats.exceptions import NatsLayerError
from tokenmeter.shipping.lago_api import LagoAuthError, LagoUnavailable

from . import backfill, check, replay, status, usage
from .environment import Environment


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    args = parser().parse_args(argv)
    if not os.environ.get("AWS_DEFAULT_REGION") and os.environ.get("AWS_REGION"):
        # boto3 reads AWS_DEFAULT_REGION (or the config file), not the AWS_REGION the AWS CLI and the other SDKs
        # read: run by hand with only that set, the command would have no region. (Lambda sets both.)
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]
    env = env or Environment()
    try:
        print(args.run(args, env))
    except (MeteringConfigError, ValueError, usage.UnknownSubscription) as exc:
        print(f"tokenmeter {args.command}: {exc}", file=sys.stderr)
        return 2
    except (NatsLayerError, LagoUnavailable, LagoAuthError) as exc:  # their messages are written to carry no secret
        print(f"tokenmeter {args.command}: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:  # no region or credentials, a bucket or queue refused: AWS says which
        print(f"tokenmeter {args.command}: AWS: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`| head`): what it read stands, and no traceback follows it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (Python flushes stdout again at exit)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tokenmeter", description="Operate tokenmeter: replay, backfill, usage, status, check."
                                   " Reads the same environment as the functions (NATS_URL, LAGO_API_URL, ...).")
    commands = root.add_subparsers(dest="command", required=True)

    cmd = commands.add_parser("status", help="ledger stream and consumer, dead letters by reason, last reconciliation")
    cmd.add_argument("--json", action="store_true")
    cmd.add_argument("--no-catch-up", action="store_true",
                     help="read the running totals as they are (for credentials that may only read)")
    cmd.set_defaults(run=_status)

    cmd = commands.add_parser("usage", help="a subscription's ledger totals for Lago's current period beside Lago's")
    cmd.add_argument("subscription", help="external subscription id")
    cmd.add_argument("--json", action="store_true")
    cmd.add_argument("--no-catch-up", action="store_true",
                     help="read the running totals as they are (for credentials that may only read)")
    cmd.set_defaults(run=_usage)

    cmd = commands.add_parser("replay", help="send dead letters through again once their cause is fixed")
    cmd.add_argument("source", choices=["records", "failures", "usage"],
                     help="records: the record dead-letter queue; failures: count_tokens' on-failure queue; "
                          "usage: lago_sync's USAGE_DLQ stream")
    cmd.add_argument("--dry-run", action="store_true", help="show what would happen; send and remove nothing")
    cmd.add_argument("--reason", help="only dead letters with this reason")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(run=_replay)

    cmd = commands.add_parser("backfill", help="meter past inference logs from S3; resumable, safe to repeat")
    cmd.add_argument("location", help="s3://bucket/prefix")
    cmd.add_argument("--since", required=True, help="ISO date or date-time, UTC unless it says (inclusive)")
    cmd.add_argument("--until", required=True, help="ISO date or date-time (exclusive)")
    cmd.add_argument("--state", type=Path, help="progress file (default: one per location and range, here)")
    cmd.add_argument("--dry-run", action="store_true", help="meter and report, send nothing")
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(run=_backfill)

    cmd = commands.add_parser("check", help="what count_tokens would bill from local log files (sends nothing)")
    cmd.add_argument("files", nargs="+", help="log files as count_tokens reads S3 objects (JSON Lines, JSON, gzip)")
    cmd.add_argument("--json", action="store_true")
    cmd.set_defaults(run=_check)
    return root


def _status(args: argparse.Namespace, env: Environment) -> str:
    found = {**_with_nats(env, lambda js: status.ledger_status(env, js, not args.no_catch_up)),
             **status.queue_status(env)}
    return json.dumps(found, indent=2) if args.json else status.render(found)


def _usage(args: argparse.Namespace, env: Environment) -> str:
    preview = _with_nats(env, lambda js: usage.usage_preview(env, js, args.subscription, not args.no_catch_up))
    return json.dumps(preview, indent=2) if args.json else usage.render(preview)


def _replay(args: argparse.Namespace, env: Environment) -> str:
    if args.source == "records":
        outcomes = replay.replay_records(env, dry_run=args.dry_run, reason=args.reason)
    elif args.source == "failures":
        outcomes = replay.replay_failures(env, dry_run=args.dry_run)
    else:
        outcomes = _with_nats(env, lambda js: replay.replay_usage(env, js, dry_run=args.dry_run, reason=args.reason))
    return replay.as_json(outcomes) if args.json else replay.summarise(outcomes, args.dry_run)


def _backfill(args: argparse.Namespace, env: Environment) -> str:
    since, until = backfill.parse_time(args.since), backfill.parse_time(args.until)
    if until <= since:
        raise ValueError("--until must be after --since")
    result = backfill.backfill(env, args.location, since, until, state_file=args.state, dry_run=args.dry_run,
                               progress=not args.no_progress and sys.stderr.isatty())
    return backfill.as_json(result) if args.json else backfill.render(result, args.dry_run)


def _check(args: argparse.Namespace, env: Environment) -> str:
    reports = check.check(env, args.files)
    return check.as_json(reports) if args.json else check.render(reports)


def _with_nats[T](env: Environment, work: Callable[[Any], Awaitable[T]]) -> T:
    connection = env.nats()

    async def run() -> T:
        try:
            return await work(await connection.jetstream())
        finally:
            if "lago" in env.__dict__:  # the Lago client belongs to this loop: closed with it
                await env.lago.close()
            await connection.close()

    try:
        return connection.run(run())
    finally:
        connection.loop.close()
        asyncio.set_event_loop(None)
