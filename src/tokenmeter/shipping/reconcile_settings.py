"""reconcile's settings, read once from the environment and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tokenmeter.core import MeteringConfigError

from .lago_settings import SecretLoader, lago_from_env, number


@dataclass(frozen=True)
class ReconcileSettings:
    lago_api_url: str
    lago_api_key: str
    lago_api_key_secret_arn: str | None = None
    lago_timeout_seconds: float = 5.0
    deadline_margin_seconds: float = 10.0  # a pass stops this long before the Lambda deadline
    # Lago's usage lags what it accepted (caches, and on ClickHouse Kafka): drift is judged only on
    # events that reached the ledger at least this long ago.
    settle_seconds: float = 3600.0
    heal: bool = True  # re-send the events Lago lacks (off: report only)
    concurrency: int = 8  # subscriptions checked against Lago at once
    # How long the running totals keep a day nobody added to: the longest billing period judged (yearly).
    totals_keep_days: float = 400.0
    totals_bucket: str = "tokenmeter_totals"
    report_bucket: str = "tokenmeter_reconciliation"
    dead_letter_stream: str = "USAGE_DLQ"
    unbillable_stream: str = "USAGE_UNBILLABLE"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 secret_loader: SecretLoader | None = None) -> ReconcileSettings:
        env = os.environ if env is None else env
        url, key, arn = lago_from_env(env, secret_loader)
        heal = env.get("RECONCILE_HEAL", "on").strip().lower()
        if heal not in ("on", "off"):
            raise MeteringConfigError(f"RECONCILE_HEAL must be on or off, got {heal!r}")
        return cls(
            lago_api_url=url,
            lago_api_key=key,
            lago_api_key_secret_arn=arn,
            lago_timeout_seconds=number(env, "LAGO_TIMEOUT_SECONDS", cls.lago_timeout_seconds, 0.1, 60),
            deadline_margin_seconds=number(env, "RECONCILE_DEADLINE_MARGIN_SECONDS", cls.deadline_margin_seconds,
                                            0.5, 120),
            settle_seconds=number(env, "RECONCILE_SETTLE_SECONDS", cls.settle_seconds, 0, 7 * 86_400),
            heal=heal == "on",
            concurrency=int(number(env, "RECONCILE_CONCURRENCY", cls.concurrency, 1, 64)),
            totals_keep_days=number(env, "TOTALS_KEEP_DAYS", cls.totals_keep_days, 1, 3650),
            totals_bucket=env.get("TOTALS_BUCKET") or cls.totals_bucket,
            report_bucket=env.get("RECONCILIATION_BUCKET") or cls.report_bucket,
            dead_letter_stream=env.get("NATS_DEAD_LETTER_STREAM") or cls.dead_letter_stream,
            unbillable_stream=env.get("NATS_UNBILLABLE_STREAM") or cls.unbillable_stream,
        )
