"""One trigger's records through metering into the outbox: what the handler does, without Lambda."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenmeter_core import MeteringConfig

from .delivery import SqsOutbox
from .metering import Meter
from .records import RawRecord, Summary
from .tokenizer_pool import TokenizerPool
from .triggers import trigger_records


def meter_trigger(event: dict[str, Any], config: MeteringConfig, tokenizers: TokenizerPool, outbox: SqsOutbox,
                  s3_client: Callable[[], Any]) -> Summary:
    """Meter a CloudWatch Logs or S3 event; raises DeliveryError if SQS did not take everything."""
    return _run(trigger_records(event, s3_client), config, tokenizers, outbox)


def meter_records(records: list[RawRecord], config: MeteringConfig, tokenizers: TokenizerPool,
                  outbox: SqsOutbox) -> Summary:
    """Meter records already taken out of their trigger (a dead letter's record, replayed)."""
    return _run(records, config, tokenizers, outbox)


def _run(items: Any, config: MeteringConfig, tokenizers: TokenizerPool, outbox: SqsOutbox) -> Summary:
    meter = Meter(config, tokenizers, outbox)
    for item in items:
        meter.add(item)
    summary = meter.finish()
    outbox.flush()  # raises if SQS did not take everything: the caller retries with the same ids
    return summary
