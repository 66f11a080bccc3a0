"""What the command needs, read from the same environment variables the functions read."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from tokenmeter.core import MeteringConfig, MeteringConfigError, load_config
from tokenmeter.core.aws import aws_client
from tokenmeter.core.secrets import load_secret
from tokenmeter.nats import ManagedConnection, NatsSettings
from tokenmeter.shipping.lago_api import LagoApi
from tokenmeter.shipping.reconcile_settings import ReconcileSettings
from tokenmeter.shipping.settings import SyncSettings

QUEUES = {
    "USAGE_QUEUE_URL": "the UsageQueue (stack output UsageQueueUrl)",
    "DEAD_LETTER_QUEUE_URL": "the record dead-letter queue (stack output RecordDeadLetterQueueUrl)",
    "INVOCATION_FAILURE_QUEUE_URL": "count_tokens' on-failure destination (stack output InvocationFailureQueueUrl)",
}


class Environment:
    def __init__(self, env: Mapping[str, str] | None = None):
        self.env = os.environ if env is None else env

    @cached_property
    def nats_settings(self) -> NatsSettings:
        return NatsSettings.from_env(self.env)

    def nats(self) -> ManagedConnection:
        return ManagedConnection(self.nats_settings)

    @cached_property
    def sync(self) -> SyncSettings:
        return SyncSettings.from_env(self.env, secret_loader=load_secret)

    @cached_property
    def reconcile(self) -> ReconcileSettings:
        return ReconcileSettings.from_env(self.env, secret_loader=load_secret)

    @cached_property
    def lago(self) -> LagoApi:
        return LagoApi(self.sync.lago_api_url, self.sync.lago_api_key, self.sync.lago_timeout_seconds, 1)

    @cached_property
    def metering(self) -> MeteringConfig:
        return load_config(self.env.get("METERING_CONFIG", ""))

    def queue_url(self, name: str) -> str:
        url = self.env.get(name, "").strip()
        if not url:
            raise MeteringConfigError(f"{name} is not set: the URL of {QUEUES[name]}")
        return url

    def client(self, service: str) -> Any:
        return aws_client(service)
