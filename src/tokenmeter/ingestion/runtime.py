"""What both doors of publish_event keep for a warm Lambda environment: the NATS connection, the event
contract, and how long to wait for PubAcks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from tokenmeter.core import Contract, load_config
from tokenmeter.nats import ManagedConnection, NatsSettings, PublishOutcome

# Leave this much of the invocation for reporting after the last PubAck wait.
DEADLINE_MARGIN_SECONDS = 1.0
MAX_PUBLISH_SECONDS = 25.0


@dataclass
class Ingestion:
    nats: ManagedConnection
    contract: Contract

    @classmethod
    def from_env(cls) -> Ingestion:
        settings = NatsSettings.from_env()
        return cls(ManagedConnection(settings), Contract.from_config(load_config(), settings.max_age_seconds))

    def close(self) -> None:
        """Close the connection and its loop (tests and tools; Lambda just freezes the environment)."""
        self.nats.run(self.nats.close())
        self.nats.loop.close()


def publish_timeout(context: Any) -> float:
    """Seconds to wait for PubAcks: what the invocation has left, less a margin."""
    remaining = context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    return max(min(remaining, MAX_PUBLISH_SECONDS), 0.1)


def report(metrics: Any, outcomes: list[PublishOutcome], rejected: int) -> None:
    """Powertools metrics for one invocation: events stored, duplicate, failed, and rejected by the contract."""
    counts = Counter(o.status for o in outcomes)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=counts["stored"])
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=counts["duplicate"])
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=counts["failed"])
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)
