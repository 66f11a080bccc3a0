"""lago_sync's settings, read once from the environment and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .lago_settings import SecretLoader, lago_from_env, number


@dataclass(frozen=True)
class SyncSettings:
    lago_api_url: str
    lago_api_key: str
    lago_api_key_secret_arn: str | None = None  # read again after a 401: a rotated key is picked up
    fetch_batch: int = 500
    # Stop fetching this long before the Lambda deadline: one batch must still ship or be nak'ed.
    deadline_margin_seconds: float = 5.0
    # An event for a subscription Lago does not know is held this long, then dead-lettered.
    unknown_hold_seconds: float = 86_400.0
    unknown_retry_delay_seconds: float = 300.0
    retry_max_seconds: float = 60.0  # nak delays double from 1 s up to this
    lago_timeout_seconds: float = 5.0
    # Batches in flight to Lago at once: hides network latency to a remote Lago (and the emulator's work:
    # bench/lago_sync_bench.py measured 4 against 2); paced under Lago Cloud's 500 posts/s all the same.
    lago_concurrency: int = 4
    dead_letter_stream: str = "USAGE_DLQ"
    unbillable_stream: str = "USAGE_UNBILLABLE"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, secret_loader: SecretLoader | None = None) -> SyncSettings:
        env = os.environ if env is None else env
        url, key, arn = lago_from_env(env, secret_loader)
        return cls(
            lago_api_url=url,
            lago_api_key=key,
            lago_api_key_secret_arn=arn,
            fetch_batch=int(number(env, "LAGO_SYNC_FETCH_BATCH", cls.fetch_batch, 1, 10_000)),
            deadline_margin_seconds=number(env, "LAGO_SYNC_DEADLINE_MARGIN_SECONDS", cls.deadline_margin_seconds, 0.5, 60),
            unknown_hold_seconds=number(env, "UNKNOWN_SUBSCRIPTION_HOLD_SECONDS", cls.unknown_hold_seconds, 0, 30 * 86_400),
            unknown_retry_delay_seconds=number(env, "UNKNOWN_SUBSCRIPTION_RETRY_SECONDS", cls.unknown_retry_delay_seconds, 1, 86_400),
            lago_timeout_seconds=number(env, "LAGO_TIMEOUT_SECONDS", cls.lago_timeout_seconds, 0.1, 60),
            lago_concurrency=int(number(env, "LAGO_SYNC_CONCURRENCY", cls.lago_concurrency, 1, 32)),
            retry_max_seconds=number(env, "LAGO_SYNC_RETRY_MAX_SECONDS", cls.retry_max_seconds, 0.01, 3600),
            dead_letter_stream=env.get("NATS_DEAD_LETTER_STREAM") or cls.dead_letter_stream,
            unbillable_stream=env.get("NATS_UNBILLABLE_STREAM") or cls.unbillable_stream,
        )
