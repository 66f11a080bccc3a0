"""`tokenmeter replay`: dead letters back through the pipeline once their cause is fixed.

Replaying is safe to repeat: a record is metered under the ids it would always have had, and
what reaches Lago twice is refused there as already billed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from tokenmeter.core import InvalidEventError, UsageEvent
from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.metering.delivery import SqsOutbox
from tokenmeter.metering.pipeline import meter_records, meter_trigger
from tokenmeter.metering.records import INVALID_UTF8, RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import log_line
from tokenmeter.metering.usage import InferenceUsage
from tokenmeter.nats import subject_for
from tokenmeter.shipping.ledger import read_stream
from tokenmeter.shipping.narrowing import DUPLICATE_COPY
from tokenmeter.shipping.totals import DEAD

from .environment import Environment
from .queues import body_json, delete, receive_all, release
from .totals import current_totals

LIMIT = 100_000


@dataclass
class Outcome:
    """What replay did (or, with --dry-run, would do) with one dead letter."""

    source: str
    reason: str
    action: str  # metered | still_dead | not_replayable | republished | filtered
    detail: str = ""
    events: int = 0


@dataclass
class Collector:
    """An outbox that only keeps what it is given: what a replay would send."""

    usages: list[InferenceUsage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add_usage(self, usage: InferenceUsage) -> None:
        self.usages.append(usage)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    def flush(self) -> None:
        pass


def replay_records(env: Environment, *, dry_run: bool, reason: str | None = None) -> list[Outcome]:
    """The record dead-letter queue: each record metered again with today's config and tokenizers."""
    sqs, url = env.client("sqs"), env.queue_url("DEAD_LETTER_QUEUE_URL")
    messages = receive_all(sqs, url, LIMIT)
    copies: dict[str, list[dict[str, Any]]] = {}
    for message in messages:  # a record dead-lettered on two deliveries: one replay, both copies go
        copies.setdefault(_letter_id(message), []).append(message)
    tokenizers, outcomes, done = TokenizerPool(env.metering.tokenizers), [], []
    for group in copies.values():
        letter = DeadLetter.from_dict(body_json(group[0]))
        if reason and letter.reason != reason:
            continue
        why_not = _not_replayable(letter)
        if why_not:
            outcomes.append(Outcome(letter.source, letter.reason, "not_replayable", why_not))
            continue
        collected = Collector()
        record = (log_line(letter.source, letter.identity, letter.record, letter.fallback_ms)
                  if letter.source.startswith("cloudwatch:") else
                  RawRecord(letter.source, letter.identity, letter.record, letter.fallback_ms))
        meter_records([record], env.metering, tokenizers, collected)
        if collected.dead_letters:
            again = collected.dead_letters[0]
            outcomes.append(Outcome(letter.source, letter.reason, "still_dead", f"{again.reason}: {again.detail}"))
            continue
        events = sum(len(usage.counts) for usage in collected.usages)
        outcomes.append(Outcome(letter.source, letter.reason, "metered", events=events))
        if not dry_run:
            outbox = SqsOutbox(sqs, env.queue_url("USAGE_QUEUE_URL"), url)
            for usage in collected.usages:
                outbox.add_usage(usage)
            outbox.flush()
            done.extend(group)
    delete(sqs, url, done)
    release(sqs, url, [m for m in messages if m not in done])
    return outcomes


def replay_failures(env: Environment, *, dry_run: bool) -> list[Outcome]:
    """count_tokens invocations that failed every retry: their original events metered again."""
    sqs, url = env.client("sqs"), env.queue_url("INVOCATION_FAILURE_QUEUE_URL")
    messages, tokenizers, outcomes, done = receive_all(sqs, url, LIMIT), TokenizerPool(env.metering.tokenizers), [], []
    for message in messages:
        record = body_json(message)
        event, request = record.get("requestPayload"), record.get("requestContext") or {}
        source = f"invocation {request.get('requestId', message['MessageId'])}"
        if not isinstance(event, dict):
            outcomes.append(Outcome(source, "failed_invocation", "not_replayable", "no requestPayload"))
            continue
        outbox = Collector() if dry_run else SqsOutbox(sqs, env.queue_url("USAGE_QUEUE_URL"),
                                                       env.queue_url("DEAD_LETTER_QUEUE_URL"))
        summary = meter_trigger(event, env.metering, tokenizers, outbox, lambda: env.client("s3"))
        dead = sum(summary.dead_letters.values())
        outcomes.append(Outcome(source, "failed_invocation", "metered", f"{summary.records} records, {dead} dead letters",
                                summary.events))
        done.append(message)
    if not dry_run:
        delete(sqs, url, done)
    release(sqs, url, [m for m in messages if dry_run or m not in done])
    return outcomes


async def replay_usage(env: Environment, js: Any, *, dry_run: bool, reason: str | None = None) -> list[Outcome]:
    """lago_sync's USAGE_DLQ: events published back to the ledger, then removed from the DLQ."""
    stream, nats = env.sync.dead_letter_stream, env.nats_settings
    # The totals take a dead letter away before it is removed (the replayed event is counted anew): only
    # letters the totals have read are replayed.
    tallied = None if dry_run else (await current_totals(env, js)).checkpoint.through.get(DEAD, 0)
    outcomes = []
    for msg in await read_stream(js, stream, f"{stream.lower()}.>"):
        headers = msg.headers or {}
        why, source = headers.get("Tokenmeter-Reason", "?"), headers.get("Tokenmeter-Source", "")
        if reason and why != reason:
            continue
        if why == DUPLICATE_COPY:
            outcomes.append(Outcome(source, why, "not_replayable", "a second copy of an event the ledger holds"))
            continue
        if tallied is not None and msg.metadata.sequence.stream > tallied:
            outcomes.append(Outcome(source, why, "waiting", "newer than the running totals: run replay again"))
            continue
        try:
            event = UsageEvent.from_dict(orjson.loads(msg.data))
        except (orjson.JSONDecodeError, InvalidEventError) as exc:
            outcomes.append(Outcome(source, why, "not_replayable", f"not a usage event: {exc}"))
            continue
        known = (await env.lago.subscription(event.external_subscription_id) is not None
                 and await env.lago.metric_exists(event.code))
        detail = f"{event.external_subscription_id} / {event.code}" + ("" if known else " still unknown to Lago")
        if not dry_run:
            seq = msg.metadata.sequence.stream
            # A fresh message id: the original's may still be inside the stream's dedup window.
            ack = await js.publish(subject_for(nats.subject_prefix, event.external_subscription_id, event.code),
                                   msg.data, stream=nats.stream,
                                   headers={"Nats-Msg-Id": f"{event.transaction_id}:replay:{seq}"})
            if ack.stream != nats.stream:
                raise RuntimeError(f"republished to {ack.stream}, expected {nats.stream}")
            await js.delete_msg(stream, seq)
        outcomes.append(Outcome(source, why, "republished", detail, 1))
    return outcomes


def summarise(outcomes: list[Outcome], dry_run: bool) -> str:
    lines = [f"  {o.action:15} {o.reason:22} {o.source}" + (f"  ({o.events} events)" if o.events else "")
             + (f"\n  {'':15} {o.detail}" if o.detail else "") for o in outcomes]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.action] = counts.get(o.action, 0) + 1
    head = ("dry run, nothing sent or removed: " if dry_run else "") + (
        ", ".join(f"{action} {n}" for action, n in sorted(counts.items())) or "nothing to replay")
    return "\n".join([head, *lines])


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps([asdict(o) for o in outcomes], indent=2)


def _not_replayable(letter: DeadLetter) -> str | None:
    if letter.identity is None:
        return f"a whole trigger or object, not one record: run `tokenmeter backfill` over {letter.source}"
    if letter.truncated:
        return f"the dead letter holds only the start of the record: backfill {letter.source}"
    if letter.reason == INVALID_UTF8:
        return "its text is not valid UTF-8, so its tokens cannot be counted exactly"
    return None


def _letter_id(message: dict[str, Any]) -> str:
    return str(body_json(message).get("id") or message["MessageId"])
