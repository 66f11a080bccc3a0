"""reconcile (scheduled): bring the running ledger totals up to date, then check the subscriptions they
mark due against Lago's current usage and send again what Lago lacks."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from nats.js.errors import BucketNotFoundError

from tokenmeter.core import load_config
from tokenmeter.core.secrets import load_secret
from tokenmeter.nats import ManagedConnection, NatsSettings
from tokenmeter.shipping.lago_api import LagoApi
from tokenmeter.shipping.reconcile import Reconciler, Reconciliation
from tokenmeter.shipping.reconcile_settings import ReconcileSettings
from tokenmeter.shipping.tally import Tally, TallySettings, tally_settings
from tokenmeter.shipping.totals_store import TotalsStore

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "tokenmeter")
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "reconcile"))
metrics = Metrics(namespace=NAMESPACE)


@dataclass
class Runtime:
    nats: ManagedConnection
    settings: ReconcileSettings
    tally: TallySettings
    lago: LagoApi


_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        settings, nats = ReconcileSettings.from_env(secret_loader=load_secret), NatsSettings.from_env()
        _runtime = Runtime(ManagedConnection(nats), settings, tally_settings(nats, settings, load_config()),
                           LagoApi.configured(settings, settings.concurrency))
    return _runtime


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime()
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - rt.settings.deadline_margin_seconds
    summary = rt.nats.run(_pass(rt, deadline, sweep=bool(event.get("sweep"))))
    logger.info("reconcile pass", extra=summary)
    return summary


async def _pass(rt: Runtime, deadline: float, sweep: bool) -> dict[str, Any]:
    """``sweep`` (the daily schedule): check every subscription, not only those with new usage."""
    js = await rt.nats.jetstream()
    store = await TotalsStore.open(js, rt.settings.totals_bucket, rt.settings.totals_keep_days)
    started = time.monotonic()
    tally = await Tally(js, store, rt.tally, deadline).run()
    metrics.add_metric(name="TotalsMessagesApplied", unit=MetricUnit.Count, value=sum(tally.applied.values()))
    summary: dict[str, Any] = {"totals": tally.as_dict(), "reconciliation": None,
                               "seconds": {"totals": round(time.monotonic() - started, 3)}}
    if sweep:
        summary["swept"] = await store.mark_all_due()
    if not tally.caught_up:
        # Judged against half-counted totals, Lago would look over: the next pass goes on counting first.
        logger.warning("the totals did not catch up with the ledger in this pass; checks wait", extra=summary)
        return summary
    started = time.monotonic()
    result = await Reconciler(js, store, rt.lago, rt.nats.settings, rt.settings, rt.tally.names.tokens,
                              deadline).run()
    summary["seconds"]["checks"] = round(time.monotonic() - started, 3)
    await _keep_report(js, rt.settings.report_bucket, result)
    report_drift(result)
    summary["reconciliation"] = result.as_dict()
    return summary


async def _keep_report(js: Any, bucket: str, result: Reconciliation) -> None:
    """The latest reconciliation report, in a NATS KV bucket (history of 20 passes)."""
    try:
        kv = await js.key_value(bucket)
    except BucketNotFoundError:
        kv = await js.create_key_value(bucket=bucket, history=20)
    await kv.put("latest", json.dumps(result.as_dict()).encode())


def report_drift(result: Reconciliation) -> None:
    metrics.add_metric(name="ReconciliationDriftingMetrics", unit=MetricUnit.Count, value=len(result.unresolved))
    metrics.add_metric(name="ReconciliationHealedEvents", unit=MetricUnit.Count,
                       value=sum(m.healed_events for m in result.metrics))
    metrics.add_metric(name="ReconciliationWaiting", unit=MetricUnit.Count, value=result.waiting)
    for drift in result.unresolved:
        with single_metric(name="ReconciliationDrift", unit=MetricUnit.Count, value=float(abs(drift.drift)),
                           namespace=NAMESPACE) as metric:
            metric.add_dimension(name="subscription", value=drift.subscription[:250])
