"""NATS settings, read once from the environment and validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tokenmeter.core.env import env_number

from .exceptions import NatsSettingsError

DAY = 86_400


@dataclass(frozen=True)
class NatsSettings:
    """Where NATS is, how to authenticate, and the stream and consumer tokenmeter keeps there."""

    url: str
    creds_secret_arn: str | None = None
    ca_file: str | None = None
    stream: str = "USAGE"
    subject_prefix: str = "usage"
    consumer: str = "lago-sync"
    # Long enough to reconcile a whole billing period against Lago.
    max_age_seconds: float = 62 * DAY
    # Longer than Lambda's retry horizon for a failed SQS message (minutes), unlike NATS's 2-minute default.
    duplicate_window_seconds: float = 3600
    replicas: int = 1
    connect_timeout_seconds: float = 2.0
    # A connection unused for longer is checked with a short flush before use. Between
    # invocations the loop does not run, so a dropped connection goes unnoticed until then.
    idle_check_seconds: float = 1.0

    @property
    def subjects(self) -> list[str]:
        return [f"{self.subject_prefix}.>"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NatsSettings:
        env = os.environ if env is None else env
        url = env.get("NATS_URL", "").strip()
        if not url:
            raise NatsSettingsError("NATS_URL is not set (e.g. nats://nats.internal:4222)")
        values = {
            "url": url,
            "creds_secret_arn": env.get("NATS_CREDS_SECRET_ARN") or None,
            "ca_file": env.get("NATS_CA_FILE") or None,
            "stream": _name(env, "NATS_STREAM", cls.stream),
            "subject_prefix": _name(env, "NATS_SUBJECT_PREFIX", cls.subject_prefix),
            "consumer": _name(env, "NATS_CONSUMER", cls.consumer),
            "max_age_seconds": _number(env, "NATS_STREAM_MAX_AGE_DAYS", 62, 1, 3650) * DAY,
            "duplicate_window_seconds": _number(env, "NATS_DEDUP_WINDOW_SECONDS", 3600, 1, 7 * DAY),
            "replicas": int(_number(env, "NATS_STREAM_REPLICAS", 1, 1, 5)),
            "connect_timeout_seconds": _number(env, "NATS_CONNECT_TIMEOUT_SECONDS", 2, 0.1, 30),
            "idle_check_seconds": _number(env, "NATS_IDLE_CHECK_SECONDS", 1, 0, 3600),
        }
        return cls(**values)


def _name(env: Mapping[str, str], key: str, default: str) -> str:
    value = env.get(key) or default
    if any(c in value for c in ".*> \t\r\n"):
        raise NatsSettingsError(f"{key} must be a single NATS token (no '.', '*', '>' or spaces), got {value!r}")
    return value


def _number(env: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    return env_number(env, key, default, low, high, NatsSettingsError)
