"""The UsageQueue trigger: every message's events into JetStream, partial batch failures.

The events of all messages are published as one pipeline on the connection's
loop, then each message's outcome is read from its events'. Not Powertools'
AsyncBatchProcessor: unless LAMBDA_TASK_ROOT is set it runs each batch with
``asyncio.run``, a new loop per invocation; outside Lambda (tests, local invoke)
the second invocation on the kept connection waited its whole deadline for
PubAcks that never came. One pipeline for the batch also measured faster than a
task per message (bench/publish_event_bench.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from tokenmeter.core import Contract, UsageEvent, ascii_json, decode_json
from tokenmeter.core.dead_letters import DeadLetter, truncate_record
from tokenmeter.nats import ManagedConnection, NatsUnavailable, PublishOutcome, publish_events

from .validation import event_list, read_events

logger = Logger(child=True)

INVALID_MESSAGE = "invalid_message"
INVALID_EVENT = "invalid_event"
DEAD_LETTER_RECORD_MAX_BYTES = 32_768


@dataclass
class BatchResult:
    response: dict[str, Any]
    outcomes: list[PublishOutcome] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def publish_batch(event: dict[str, Any], connection: ManagedConnection, timeout: float,
                  contract: Contract | None = None) -> BatchResult:
    """Publish every message's events; a message fails only if one of its events has no PubAck.

    The response is SQS's partial batch response: the ids of the messages to deliver again.
    """
    records = event.get("Records") or []
    result = BatchResult(response={})
    owners: list[int] = []  # the record each event came from

    def events() -> Iterator[UsageEvent]:
        # Decoded as they are published: the server stores one message's events while the next is read.
        for position, record in enumerate(records):
            valid, letters = decode_message(record.get("body") or "", f"sqs:{record.get('messageId')}", contract)
            result.dead_letters.extend(letters)
            owners.extend([position] * len(valid))
            yield from valid

    published: list[UsageEvent] = []

    def kept(stream: Iterator[UsageEvent]) -> Iterator[UsageEvent]:
        for event in stream:
            published.append(event)
            yield event

    result.outcomes = connection.run(publish_or_fail(connection, kept(events()), timeout))
    for i, outcome in enumerate(result.outcomes):
        if outcome.status == "rejected":  # NATS can never take it: a dead letter, not a retry of the message
            record = records[owners[i]]
            result.dead_letters.append(DeadLetter(
                INVALID_EVENT, outcome.error or "rejected by NATS", f"sqs:{record.get('messageId')}",
                truncate_record(published[i].to_json().decode(), DEAD_LETTER_RECORD_MAX_BYTES)))
    failed = {owners[i]: o.error for i, o in enumerate(result.outcomes) if o.status == "failed"}
    for position, error in failed.items():
        logger.warning("message not published", extra={"message_id": records[position].get("messageId"), "error": error})
    result.response = {"batchItemFailures": [{"itemIdentifier": records[p].get("messageId")} for p in sorted(failed)]}
    return result


async def publish_or_fail(connection: ManagedConnection, events: Iterable[UsageEvent], timeout: float) -> list[PublishOutcome]:
    """Outcomes for every event; all "failed" when NATS cannot be reached."""
    try:
        await connection.jetstream()  # connected, the stream ensured
    except NatsUnavailable as exc:
        logger.warning("NATS unavailable", extra={"error": str(exc)})
        return [PublishOutcome(e.transaction_id, "failed", "NATS unavailable") for e in events]
    return await publish_events(connection.client, events, connection.settings, timeout=timeout, lost=connection.lost)


def decode_message(body: str, source: str, contract: Contract | None = None) -> tuple[list[UsageEvent], list[DeadLetter]]:
    """A message's valid events, and dead letters for what cannot be published."""
    try:
        # Lenient: an escaped lone surrogate in one event must cost only that event (the contract refuses it).
        items = event_list(decode_json(body), allow_single=False)
    except ValueError as exc:
        return [], [DeadLetter(INVALID_MESSAGE, str(exc), source, truncate_record(body, DEAD_LETTER_RECORD_MAX_BYTES))]
    events, rejected = read_events(items, contract)
    letters = [
        DeadLetter(
            INVALID_EVENT,
            "; ".join(f"{name}: {why}" for name, why in r.errors.items()),
            f"{source}#events[{r.index}]",
            truncate_record(ascii_json(r.raw).decode(), DEAD_LETTER_RECORD_MAX_BYTES),
        )
        for r in rejected
    ]
    return events, letters
