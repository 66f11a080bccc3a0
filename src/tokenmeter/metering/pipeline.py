"""One trigger's records through metering into the outbox: what the handler does, without Lambda."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from tokenmeter.core import MeteringConfig, TokenmeterError

from .delivery import SqsOutbox
from .metering import Meter
from .records import DeadLetterBudget, RawRecord, ReadLimits, Summary, Unavailable
from .stream_memory import S3StreamMemory
from .streams import Streams
from .tokenizer_pool import TokenizerPool
from .triggers import QueuedObjects, trigger_records

logger = Logger(child=True)


def meter_trigger(event: dict[str, Any], config: MeteringConfig, tokenizers: TokenizerPool, outbox: SqsOutbox,
                  s3_client: Callable[[], Any], time_left: Callable[[], float] | None = None,
                  memory: S3StreamMemory | None = None) -> Summary:
    """Meter a CloudWatch Logs or S3 event; raises DeliveryError if SQS did not take everything, S3ReadError
    if an object cannot be read now, OutOfTime if the invocation's time runs out (each retried by Lambda). From an
    SQS batch of S3 notifications, the messages left for SQS to deliver again are in the summary's ``retry``.
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
    clock = _Clock(meter, time_left)
    for item in items:
        if type(item) is QueuedObjects:
            _add_message(meter, clock, item)
        else:
            meter.add(item)
            clock.check()
    summary = meter.finish()
    outbox.flush()  # raises if SQS did not take everything: the caller retries with the same ids
    if memory is not None:
        memory.save()
    return summary


class _Clock:
    """Raises OutOfTime when the invocation is about to run out of time, checked every 256 records or more (an
    OpenTelemetry document adds its spans at once)."""

    def __init__(self, meter: Meter, time_left: Callable[[], float] | None):
        self._meter, self._time_left, self._checked = meter, time_left, 0
        self.expired = False

    def check(self) -> None:
        records = self._meter.summary.records
        if self._time_left is not None and records - self._checked >= 256:
            self._checked = records
            self.now()

    def now(self) -> None:
        if self._time_left is not None and self._time_left() < _DEADLINE_MARGIN_SECONDS:
            self.expired = True
            raise OutOfTime(f"out of time after {self._meter.summary.records:,} records of this trigger")


def _add_message(meter: Meter, clock: _Clock, message: QueuedObjects) -> None:
    """One SQS message's objects. An object that cannot be read now (S3ReadError, or S3 refusing it), or the
    invocation's time running out, leaves the message to SQS to deliver again: what was metered of it is sent now
    and again then, under the same ids. Once time has run out, every later message is left too, unread. A message
    S3 keeps refusing reaches the queue's own dead-letter queue after its redeliveries."""
    if not clock.expired:
        try:
            clock.now()
            for item in message.items:
                meter.add(item)
                clock.check()
            return
        except (Unavailable, MemoryError):
            raise  # the outbox or the stream memory failed, not this message: every message is delivered again
        except Exception as exc:  # noqa: BLE001 - reading its objects (S3ReadError, S3's own errors) or the time
            logger.warning("message left for SQS to deliver again",
                           extra={"message_id": message.message_id, "error": f"{type(exc).__name__}: {exc}"})
    meter.summary.retry.append(message.message_id)
