"""Lago through lago-python-client, with outcomes tokenmeter can act on.

The client keeps Lago's wire format; we turn its answers into "held by Lago",
"already billed", "rejected (dead letter)" or "try again later". Its own 429
retries are off: they can sleep past the Lambda deadline, so we wait as Lago
says only while time remains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from lago_python_client.client import Client
from lago_python_client.exceptions import LagoApiError, LagoRateLimitError
from lago_python_client.models import BatchEvent, Event

from tokenmeter_core import UsageEvent

MAX_BATCH = 100
_CACHE_SECONDS = 300.0
_MISSING_CACHE_SECONDS = 30.0


@dataclass
class ShipResult:
    """Per event index of one batch: what Lago holds now, and what it never will."""

    stored: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)  # value_already_exist: billed before
    rejected: dict[int, str] = field(default_factory=dict)  # Lago's reason; these are dead-lettered
    retry: list[int] = field(default_factory=list)  # nothing held: try again later
    retry_reason: str | None = None
    retry_after: float | None = None


class LagoUnavailable(Exception):
    """Raised when Lago cannot answer a lookup now (network, 5xx, rate limit)."""


class LagoApi:
    def __init__(self, api_url: str, api_key: str):
        self.client = Client(api_key=api_key, api_url=api_url, retry_on_rate_limit=False)
        self._subscriptions: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._metrics: dict[str, tuple[float, bool]] = {}

    def ship(self, events: list[UsageEvent], deadline: float) -> ShipResult:
        """Ship at most 100 events; a 422 batch is retried without the events Lago named."""
        result = ShipResult()
        pending = list(range(len(events)))
        while pending:
            try:
                self.client.events.batch_create(BatchEvent(events=[Event(**events[i].as_dict()) for i in pending]))
                result.stored.extend(pending)
                return result
            except LagoRateLimitError as exc:
                reset = float(exc.reset or 1)
                if time.monotonic() + reset < deadline:
                    time.sleep(reset)
                    continue
                return _retry(result, pending, "rate_limited", reset)
            except LagoApiError as exc:
                details = (exc.response or {}).get("error_details") if isinstance(exc.response, dict) else None
                if exc.status_code != 422 or not isinstance(details, dict) or not all(k.isdigit() for k in details):
                    return _retry(result, pending, f"lago {exc.status_code}", None)
                still = []
                for position, index in enumerate(pending):
                    errors = details.get(str(position))
                    if errors is None:
                        still.append(index)
                    elif errors == {"transaction_id": ["value_already_exist"]}:
                        result.already.append(index)
                    else:
                        result.rejected[index] = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in errors.items())
                pending = still
            except httpx.HTTPError as exc:  # timeouts, refused and dropped connections
                return _retry(result, pending, f"network: {type(exc).__name__}", None)
        return result

    def subscription(self, external_id: str) -> dict[str, Any] | None:
        """The subscription (cached), or None if Lago does not know it."""
        cached = self._subscriptions.get(external_id)
        if cached and time.monotonic() < cached[0]:
            return cached[1]
        try:
            found = self.client.subscriptions.find(external_id).dict()
        except LagoApiError as exc:
            if exc.status_code != 404:
                raise LagoUnavailable(f"subscription lookup: Lago answered {exc.status_code}") from None
            found = None
        except httpx.HTTPError as exc:
            raise LagoUnavailable(f"subscription lookup: {type(exc).__name__}") from None
        ttl = _CACHE_SECONDS if found else _MISSING_CACHE_SECONDS
        self._subscriptions[external_id] = (time.monotonic() + ttl, found)
        return found

    def metric_exists(self, code: str) -> bool:
        cached = self._metrics.get(code)
        if cached and time.monotonic() < cached[0]:
            return cached[1]
        try:
            self.client.billable_metrics.find(code)
            exists = True
        except LagoApiError as exc:
            if exc.status_code != 404:
                raise LagoUnavailable(f"metric lookup: Lago answered {exc.status_code}") from None
            exists = False
        except httpx.HTTPError as exc:
            raise LagoUnavailable(f"metric lookup: {type(exc).__name__}") from None
        self._metrics[code] = (time.monotonic() + (_CACHE_SECONDS if exists else _MISSING_CACHE_SECONDS), exists)
        return exists

    def current_usage(self, customer: str, subscription: str) -> Any:
        try:
            return self.client.customers.current_usage(customer, subscription)
        except (LagoApiError, httpx.HTTPError) as exc:
            raise LagoUnavailable(f"current usage of {subscription}: {type(exc).__name__}") from None


def _retry(result: ShipResult, pending: list[int], reason: str, after: float | None) -> ShipResult:
    result.retry, result.retry_reason, result.retry_after = list(pending), reason, after
    return result
