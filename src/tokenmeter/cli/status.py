"""`tokenmeter status`: the ledger's stream and consumer, dead letters by reason, last reconciliation."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError

from .environment import Environment
from .queues import body_json, receive_all, release
from .totals import current_totals

SAMPLE = 10_000  # dead letters read per queue to count reasons


async def ledger_status(env: Environment, js: Any, catch_up: bool = True) -> dict[str, Any]:
    nats = env.nats_settings
    info = await js.stream_info(nats.stream)
    consumer = await js.consumer_info(nats.stream, nats.consumer)
    waiting = consumer.num_pending + consumer.num_ack_pending
    oldest = None
    if waiting:
        try:
            first = await js.get_msg(nats.stream, consumer.ack_floor.stream_seq + 1)
            oldest = (datetime.now(UTC) - first.time).total_seconds()
        except NotFoundError:
            pass
    totals = await current_totals(env, js, catch_up)
    return {
        "stream": {"name": nats.stream, "messages": info.state.messages, "bytes": info.state.bytes,
                   "first_seq": info.state.first_seq, "last_seq": info.state.last_seq},
        "consumer": {"name": nats.consumer, "pending": consumer.num_pending, "ack_pending": consumer.num_ack_pending,
                     "redelivered": consumer.num_redelivered, "oldest_unshipped_seconds": oldest},
        # By reason, every letter ever written (counted by the running totals: as cheap at a million as at
        # one); how many wait in the stream now (replay removes them).
        "usage_dead_letters": totals.checkpoint.dead_letters,
        "usage_dead_letters_waiting": await _messages(js, env.sync.dead_letter_stream),
        "unbillable": totals.checkpoint.unbillable,
        "totals": totals.as_dict(),
        "last_reconciliation": await _last_reconciliation(js, env.reconcile.report_bucket),
    }


async def _messages(js: Any, stream: str) -> int:
    try:
        return (await js.stream_info(stream)).state.messages
    except NotFoundError:
        return 0


async def _last_reconciliation(js: Any, bucket: str) -> dict[str, Any] | None:
    try:
        kv = await js.key_value(bucket)
        return json.loads((await kv.get("latest")).value)
    except (BucketNotFoundError, KeyNotFoundError, NotFoundError):
        return None


def queue_status(env: Environment) -> dict[str, Any]:
    """Record dead letters by reason (each id once) and kept failed invocations, where configured."""
    found: dict[str, Any] = {}
    for name, key in (("DEAD_LETTER_QUEUE_URL", "record_dead_letters"), ("INVOCATION_FAILURE_QUEUE_URL",
                                                                           "failed_invocations")):
        if not env.env.get(name):
            continue
        sqs = env.client("sqs")  # only when a queue is configured: no AWS settings needed otherwise
        messages = receive_all(sqs, env.queue_url(name), SAMPLE)
        release(sqs, env.queue_url(name), messages)
        if key == "record_dead_letters":
            letters = {}
            for m in messages:
                letter = body_json(m)
                letters[letter.get("id") or m["MessageId"]] = letter.get("reason", "?")
            found[key] = dict(Counter(letters.values()))
        else:
            found[key] = len(messages)
    return found


def render(status: dict[str, Any]) -> str:
    stream, consumer = status["stream"], status["consumer"]
    age = consumer["oldest_unshipped_seconds"]
    lines = [f"stream {stream['name']}: {stream['messages']:,} messages ({stream['bytes']:,} bytes), "
             f"seq {stream['first_seq']}..{stream['last_seq']}",
             f"consumer {consumer['name']}: {consumer['pending']:,} pending, {consumer['ack_pending']:,} awaiting ack "
             f"or retry, {consumer['redelivered']:,} redelivered; oldest unshipped "
             + ("-" if age is None else f"{age:,.0f} s ago"),
             f"running totals: through seq {status['totals']['through_seq']:,}"
             + (f", {status['totals']['behind']:,} newer messages not counted yet" if status["totals"]["behind"] else "")]
    lines.append(f"USAGE_DLQ: {status['usage_dead_letters_waiting']:,} waiting")
    for key, title in (("usage_dead_letters", "USAGE_DLQ, ever"), ("unbillable", "unbillable (Lago stores, never bills)"),
                       ("record_dead_letters", "record dead letters")):
        if key in status:
            counts = status[key]
            lines.append(f"{title}: " + (", ".join(f"{r} {n}" for r, n in sorted(counts.items())) or "none"))
    if "failed_invocations" in status:
        lines.append(f"failed count_tokens invocations kept: {status['failed_invocations']}")
    report = status["last_reconciliation"]
    if report is None:
        lines.append("last reconciliation: none yet")
    else:
        drifting = [d for d in report["drifting"] if d["status"] != "healed"]
        lines.append(f"last reconciliation {report['checked_at']}: {report['subscriptions']} subscriptions checked, "
                     f"{report['healed_events']} events healed, {len(drifting)} drifting, "
                     f"{len(report['skipped'])} skipped")
        lines += [f"  {d['external_subscription_id']} {d['code']}: {d['status']} by {d['drift']}" for d in drifting]
    return "\n".join(lines)

