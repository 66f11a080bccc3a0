"""publish_event: usage events from the UsageQueue (SQS) into JetStream, with partial batch failures."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from tokenmeter.core import MeteringConfigError, ascii_json
from tokenmeter.core.aws import aws_client
from tokenmeter.core.sqs import QueueBatcher
from tokenmeter.ingestion.runtime import Ingestion, publish_timeout, report
from tokenmeter.ingestion.sqs_batch import publish_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "publish_event"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter"))

_runtime: Ingestion | None = None


def runtime() -> Ingestion:
    global _runtime
    if _runtime is None:
        _runtime = Ingestion.from_env()
    return _runtime


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    records = event.get("Records") or []
    logger.set_correlation_id(records[0].get("messageId") if records else context.aws_request_id)
    result = publish_batch(event, rt.nats, publish_timeout(context), rt.contract)
    if result.dead_letters:
        url = os.environ.get("DEAD_LETTER_QUEUE_URL")
        if not url:
            raise MeteringConfigError("DEAD_LETTER_QUEUE_URL is not set: invalid events have nowhere to go")
        batcher = QueueBatcher(aws_client("sqs"), url)
        for letter in result.dead_letters:
            batcher.add(ascii_json(letter.as_dict()).decode())
        batcher.flush()  # raises if SQS did not take them: the whole batch is retried, ids make that safe
    report(metrics, result.outcomes, rejected=len(result.dead_letters))
    failures = result.response.get("batchItemFailures", [])
    logger.info("published batch", extra={"messages": len(records), "failed_messages": len(failures)})
    return result.response

