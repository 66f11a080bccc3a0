"""One trigger's records through metering into the outbox: what the handler does, without Lambda."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenmeter.core import MeteringConfig, TokenmeterError

from .delivery import SqsOutbox
from .metering import Meter
from .records import DeadLetterBudget, RawRecord, ReadLimits, Summary
from .stream_memory import S3StreamMemory
from .streams import Streams
from .tokenizer_pool import TokenizerPool
from .triggers import trigger_records


def meter_trigger(event: dict[str, Any], config: MeteringConfig, tokenizers: TokenizerPool, outbox: SqsOutbox,
                  s3_client: Callable[[], Any], time_left: Callable[[], float] | None = None,
                  memory: S3StreamMemory | None = None) -> Summary:
    """Meter a CloudWatch Logs or S3 event; raises DeliveryError if SQS did not take everything, S3ReadError
    if an object cannot be read now, OutOfTime if the invocation's time runs out (each retried by Lambda).
    ``memory`` keeps streams split between deliveries (stream_memory.py)."""
    budget = DeadLetterBudget(config.max_dead_letters_per_object)
    limits = ReadLimits(config.max_record_bytes, config.max_object_bytes, config.max_document_bytes)
    return _run(trigger_records(event, s3_client, limits, budget), config, tokenizers, outbox, budget, time_left,
                memory)


def meter_records(records: list[RawRecord], config: MeteringConfig, tokenizers: TokenizerPool,
                  outbox: SqsOutbox) -> Summary:
    """Meter records already taken out of their trigger (a dead letter's record, replayed)."""
    return _run(records, config, tokenizers, outbox, DeadLetterBudget(0), None)


class OutOfTime(TokenmeterError):
    """Raised when an invocation is about to run out of time: failing now lets Lambda retry it cleanly."""


# Stop this long before the deadline: the records metered so far still have to reach SQS.
_DEADLINE_MARGIN_SECONDS = 5.0


def _run(items: Any, config: MeteringConfig, tokenizers: TokenizerPool, outbox: SqsOutbox, budget: DeadLetterBudget,
         time_left: Callable[[], float] | None, memory: S3StreamMemory | None = None) -> Summary:
    meter = Meter(config, tokenizers, outbox, budget, Streams(memory))
    checked = 0
    for item in items:
        meter.add(item)
        # Every 256 records or more (an OpenTelemetry document adds its spans at once).
        if time_left is not None and meter.summary.records - checked >= 256:
            checked = meter.summary.records
            if time_left() < _DEADLINE_MARGIN_SECONDS:
                raise OutOfTime(f"out of time after {meter.summary.records:,} records of this trigger")
    summary = meter.finish()
    outbox.flush()  # raises if SQS did not take everything: the caller retries with the same ids
    if memory is not None:
        memory.save()
    return summary
