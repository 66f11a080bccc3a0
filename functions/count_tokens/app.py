"""count_tokens: inference logs (CloudWatch Logs, S3 objects notified directly or through SQS) in, usage events
on the UsageQueue out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from tokenmeter.core import MeteringConfig, MeteringConfigError, load_config
from tokenmeter.core.aws import aws_client
from tokenmeter.metering.delivery import SqsOutbox
from tokenmeter.metering.pipeline import meter_trigger
from tokenmeter.metering.records import Summary
from tokenmeter.metering.stream_memory import S3StreamMemory
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import is_queued

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter")
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "count_tokens"))
metrics = Metrics(namespace=NAMESPACE)
# No Powertools Tracer here: the X-Ray SDK builds botocore clients at import,
# measured at 300-400 ms of cold start (bench/count_tokens_bench.py). Lambda's
# active tracing still records every invocation.


@dataclass(frozen=True)
class Settings:
    config: MeteringConfig
    tokenizers: TokenizerPool
    usage_queue_url: str
    dead_letter_queue_url: str
    stream_memory_bucket: str | None  # where Anthropic streams split between deliveries are kept


_settings: Settings | None = None


def settings() -> Settings:
    """Configuration, read and validated once per Lambda environment."""
    global _settings
    if _settings is None:
        missing = [name for name in ("USAGE_QUEUE_URL", "DEAD_LETTER_QUEUE_URL") if not os.environ.get(name)]
        if missing:
            raise MeteringConfigError(f"environment variable(s) not set: {', '.join(missing)}")
        config = load_config()
        _settings = Settings(
            config, TokenizerPool(config.tokenizers), os.environ["USAGE_QUEUE_URL"], os.environ["DEAD_LETTER_QUEUE_URL"],
            os.environ.get("STREAM_MEMORY_BUCKET") or None,
        )
    return _settings


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    env = settings()
    outbox = SqsOutbox(aws_client("sqs"), env.usage_queue_url, env.dead_letter_queue_url)
    memory = S3StreamMemory(lambda: aws_client("s3"), env.stream_memory_bucket) if env.stream_memory_bucket else None
    # Raises if SQS did not take everything: the trigger retries, with the same ids.
    summary = meter_trigger(event, env.config, env.tokenizers, outbox, lambda: aws_client("s3"),
                            lambda: context.get_remaining_time_in_millis() / 1000, memory)
    report(summary)
    if is_queued(event):  # S3 notifications through SQS: what Lambda reads is the messages to deliver again
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in summary.retry]}
    return summary.as_dict()


def report(summary: Summary) -> None:
    metrics.add_metric(name="Records", unit=MetricUnit.Count, value=summary.records)
    metrics.add_metric(name="UsageEvents", unit=MetricUnit.Count, value=summary.events)
    if summary.retry:
        metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=len(summary.retry))
    for reason, count in summary.dead_letters.items():
        with single_metric(name="DeadLetters", unit=MetricUnit.Count, value=count, namespace=NAMESPACE) as metric:
            metric.add_dimension(name="reason", value=reason)
    logger.info("metered", extra=summary.as_dict())
