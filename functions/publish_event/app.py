"""publish_event: usage events from the UsageQueue (SQS) and from HTTP into JetStream."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tokenmeter.core import MeteringConfigError, UsageEvent, ascii_json
from tokenmeter.core.aws import aws_client
from tokenmeter.core.secrets import load_secret
from tokenmeter.core.sqs import QueueBatcher
from tokenmeter.ingestion.http_api import HttpSettings, handle_request, is_http_event
from tokenmeter.ingestion.sqs_batch import publish_batch, publish_or_fail
from tokenmeter.nats import ManagedConnection, NatsSettings, PublishOutcome

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "publish_event"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter"))

# Leave this much of the invocation for reporting after the last PubAck wait.
DEADLINE_MARGIN_SECONDS = 1.0
MAX_PUBLISH_SECONDS = 25.0


@dataclass
class Runtime:
    """What lives as long as the Lambda environment: the NATS connection and settings."""

    nats: ManagedConnection
    http: HttpSettings
    dead_letter_queue_url: str | None


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(
            ManagedConnection(NatsSettings.from_env()),
            HttpSettings.from_env(secret_loader=load_secret),
            os.environ.get("DEAD_LETTER_QUEUE_URL") or None,
        )
    return _runtime


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    timeout = publish_timeout(context)
    if is_http_event(event):
        logger.set_correlation_id(event["requestContext"].get("requestId"))

        def publish(events: list[UsageEvent]) -> list[PublishOutcome]:
            return rt.nats.run(publish_or_fail(rt.nats, events, timeout))

        response, outcomes = handle_request(event, rt.http, publish)
        report(outcomes, rejected=0)
        return response
    records = event.get("Records") or []
    logger.set_correlation_id(records[0].get("messageId") if records else context.aws_request_id)
    result = publish_batch(event, rt.nats, timeout)
    if result.dead_letters:
        if rt.dead_letter_queue_url is None:
            raise MeteringConfigError("DEAD_LETTER_QUEUE_URL is not set: invalid events have nowhere to go")
        batcher = QueueBatcher(aws_client("sqs"), rt.dead_letter_queue_url)
        for letter in result.dead_letters:
            batcher.add(ascii_json(letter.as_dict()).decode())
        batcher.flush()  # raises if SQS did not take them: the whole batch is retried, ids make that safe
    report(result.outcomes, rejected=len(result.dead_letters))
    failures = result.response.get("batchItemFailures", [])
    logger.info("published batch", extra={"messages": len(records), "failed_messages": len(failures)})
    return result.response


def publish_timeout(context: LambdaContext) -> float:
    """Seconds to wait for PubAcks: what the invocation has left, less a margin."""
    remaining = context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    return max(min(remaining, MAX_PUBLISH_SECONDS), 0.1)


def report(outcomes: list[PublishOutcome], rejected: int) -> None:
    counts = Counter(o.status for o in outcomes)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=counts["stored"])
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=counts["duplicate"])
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)
