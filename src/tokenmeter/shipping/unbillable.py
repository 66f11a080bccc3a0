"""Events Lago stores (200) and will never bill, told apart from its subscription as Lago reports it.

lago-api bills an event only inside a billing period of a subscription that had started by then:
- before ``started_at`` (or for a subscription still pending) nothing is billed;
- a terminated or canceled subscription has been invoiced for good when it ended;
- an event timestamped before the current billing period arrives after that period was invoiced.
Such events are still shipped (Lago keeps them, and the ledger and Lago agree event for event),
then recorded in the unbillable stream, counted, and alarmed on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tokenmeter.core import UsageEvent, timestamp_ms

from .lago_api import LagoSubscription

BEFORE_START = "before_subscription_start"
ENDED = "subscription_ended"
PERIOD_CLOSED = "period_closed"


def unbillable_reason(subscription: LagoSubscription, event: UsageEvent) -> tuple[str, str] | None:
    """(reason, detail) for an event Lago will never bill, None for a billable one."""
    at = timestamp_ms(event.timestamp)
    if subscription.status in ("terminated", "canceled"):
        return ENDED, f"subscription {subscription.status} at {_when(subscription.ended_ms)}: already invoiced"
    if subscription.status == "pending" or subscription.started_ms is None:
        return BEFORE_START, "the subscription has not started"
    if at < subscription.started_ms:
        return BEFORE_START, f"event at {_when(at)}, subscription started {_when(subscription.started_ms)}"
    if subscription.period_start_ms is not None and at < subscription.period_start_ms:
        return PERIOD_CLOSED, (f"event at {_when(at)}, before the current period "
                               f"(from {_when(subscription.period_start_ms)}): that period was invoiced")
    return None


def _when(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
