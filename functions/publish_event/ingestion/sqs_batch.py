"""The UsageQueue trigger: every message's events into JetStream, partial batch failures.

The messages are published concurrently on the connection's loop, so the events
of the whole batch are in flight together. Not Powertools' AsyncBatchProcessor:
unless LAMBDA_TASK_ROOT is set it runs each batch with ``asyncio.run``, a new
loop per invocation; outside Lambda (tests, local invoke) the second invocation
on the kept connection waited its whole deadline for PubAcks that never came.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aws_lambda_powertools import Logger

from tokenmeter_core import ascii_json
from tokenmeter_core.dead_letters import DeadLetter, truncate_record
from tokenmeter_nats import ManagedConnection, PublishOutcome, publish_events

from .validation import event_list, read_events

logger = Logger(child=True)

INVALID_MESSAGE = "invalid_message"
INVALID_EVENT = "invalid_event"
DEAD_LETTER_RECORD_MAX_BYTES = 32_768


class PublishFailed(Exception):
    """Raised for a message with an event that JetStream did not acknowledge: SQS redelivers it."""


@dataclass
class BatchResult:
    response: dict[str, Any]
    outcomes: list[PublishOutcome] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def publish_batch(event: dict[str, Any], connection: ManagedConnection, timeout: float) -> BatchResult:
    """Publish every message's events; a message fails only if one of its events has no PubAck.

    The response is SQS's partial batch response: the ids of the messages to deliver again.
    """
    records = event.get("Records") or []
    result = BatchResult(response={})
    deadline = connection.loop.time() + timeout

    async def publish_message(record: dict[str, Any]) -> None:
        events, letters = decode_message(record.get("body") or "", f"sqs:{record.get('messageId')}")
        result.dead_letters.extend(letters)
        if not events:
            return
        js = await connection.jetstream()
        outcomes = await publish_events(js, events, connection.settings, timeout=deadline - connection.loop.time())
        result.outcomes.extend(outcomes)
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            raise PublishFailed(f"{len(failed)} of {len(outcomes)} events have no PubAck: {failed[0].error}")

    async def publish_all() -> list[Any]:
        return await asyncio.gather(*(publish_message(r) for r in records), return_exceptions=True)

    failures = []
    for record, outcome in zip(records, connection.run(publish_all())):
        if isinstance(outcome, BaseException):
            logger.warning("message not published", extra={"message_id": record.get("messageId"), "error": str(outcome)})
            failures.append({"itemIdentifier": record.get("messageId")})
    result.response = {"batchItemFailures": failures}
    return result


def decode_message(body: str, source: str) -> tuple[list[Any], list[DeadLetter]]:
    """A message's valid events, and dead letters for what cannot be published."""
    try:
        items = event_list(orjson.loads(body), allow_single=False)
    except (orjson.JSONDecodeError, ValueError) as exc:
        return [], [DeadLetter(INVALID_MESSAGE, str(exc), source, truncate_record(body, DEAD_LETTER_RECORD_MAX_BYTES))]
    events, rejected = read_events(items)
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
