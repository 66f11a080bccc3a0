"""lago_sync (scheduled): ship the ledger's usage to Lago (reconciliation is the reconcile function's)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from tokenmeter.core import Contract, MeteringConfig, load_config
from tokenmeter.core.secrets import load_secret
from tokenmeter.nats import ManagedConnection, NatsSettings
from tokenmeter.shipping.dead_letters import ensure_side_stream
from tokenmeter.shipping.lago_api import LagoApi, LagoAuthError
from tokenmeter.shipping.settings import SyncSettings
from tokenmeter.shipping.shipper import Shipper

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter")
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lago_sync"))
metrics = Metrics(namespace=NAMESPACE)


@dataclass
class Runtime:
    nats: ManagedConnection
    settings: SyncSettings
    config: MeteringConfig
    lago: LagoApi
    contract: Contract
    side_streams_ready: bool = False


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings, nats, config = SyncSettings.from_env(secret_loader=load_secret), NatsSettings.from_env(), load_config()
        _runtime = Runtime(ManagedConnection(nats), settings, config,
                           LagoApi.configured(settings, settings.lago_concurrency),
                           Contract.from_config(config, nats.max_age_seconds))
    return _runtime


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    summary = rt.nats.run(_sync(rt, deadline))
    logger.info("lago_sync run", extra=summary)
    return summary


async def _sync(rt: Runtime, deadline: float) -> dict[str, Any]:
    js = await rt.nats.jetstream()
    if not rt.side_streams_ready:
        await ensure_side_stream(js, rt.settings.dead_letter_stream)
        await ensure_side_stream(js, rt.settings.unbillable_stream)
        rt.side_streams_ready = True
    try:
        shipped = await Shipper(js, rt.nats.client, rt.lago, rt.nats.settings, rt.settings, deadline, rt.contract).run()
    except LagoAuthError as exc:
        logger.error("Lago refused lago_sync's API key; the run fails so that the errors alarm fires",
                     extra={"error": str(exc)})
        raise
    finally:
        await rt.nats.client.flush(timeout=2)  # acks are fire-and-forget: make sure they left before the freeze
    report(shipped.as_dict())
    consumer = await js.consumer_info(rt.nats.settings.stream, rt.nats.settings.consumer)
    pending = consumer.num_pending + consumer.num_ack_pending
    metrics.add_metric(name="ConsumerPending", unit=MetricUnit.Count, value=pending)
    return {**shipped.as_dict(), "pending": pending}  # pending includes events waiting out a retry delay


def report(shipped: dict[str, Any]) -> None:
    metrics.add_metric(name="EventsShipped", unit=MetricUnit.Count, value=shipped["shipped"])
    metrics.add_metric(name="EventsAlreadyBilled", unit=MetricUnit.Count, value=shipped["already_billed"])
    metrics.add_metric(name="EventsRetried", unit=MetricUnit.Count, value=shipped["retried"])
    metrics.add_metric(name="EventsHeld", unit=MetricUnit.Count, value=shipped["held"])
    metrics.add_metric(name="EventsUnbillable", unit=MetricUnit.Count, value=sum(shipped["unbillable"].values()))
    for name, counts in (("EventsDeadLettered", shipped["dead_lettered"]), ("EventsUnbillable", shipped["unbillable"])):
        for reason, count in counts.items():
            with single_metric(name=name, unit=MetricUnit.Count, value=count, namespace=NAMESPACE) as metric:
                metric.add_dimension(name="reason", value=reason)
