"""Reading the ledger: the USAGE stream's events since a time, and the ids already dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from tokenmeter.core import InvalidEventError, UsageEvent
from tokenmeter.nats import encode_token

_FETCH = 1000


async def read_stream(js: Any, stream: str, subjects: str, since: datetime | None = None) -> list[Any]:
    """Every message of ``stream`` on ``subjects`` stored since ``since``, through an ephemeral consumer."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    last = info.state.last_seq
    if not info.state.messages:
        return []
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_TIME if since else DeliverPolicy.ALL,
        opt_start_time=since.isoformat().replace("+00:00", "Z") if since else None,
        inactive_threshold=60.0,
        mem_storage=True,
    )
    sub = await js.pull_subscribe(subjects, durable=None, stream=stream, config=config)
    messages: list[Any] = []
    try:
        while True:
            try:
                batch = await sub.fetch(_FETCH, timeout=1.0)
            except nats.errors.TimeoutError:
                break
            messages.extend(batch)
            if batch[-1].metadata.sequence.stream >= last:
                break
    finally:
        await sub.unsubscribe()
    return messages


@dataclass(slots=True)
class LedgerEntry:
    event: UsageEvent
    appended_ms: int  # when the USAGE stream stored it


async def ledger_events(js: Any, stream: str, prefix: str, since: datetime,
                        subscription: str | None = None) -> dict[str, dict[str, LedgerEntry]]:
    """Events per subscription (or of one), by transaction id: a re-delivery stored after the dedup
    window counts once, at its first append."""
    subjects = f"{prefix}.>" if subscription is None else f"{prefix}.{encode_token(subscription)}.*"
    by_subscription: dict[str, dict[str, LedgerEntry]] = {}
    for msg in await read_stream(js, stream, subjects, since):
        try:
            event = UsageEvent.from_dict(orjson.loads(msg.data))
        except (orjson.JSONDecodeError, InvalidEventError):
            continue  # dead-lettered by shipping; never billed
        appended_ms = int(msg.metadata.timestamp.timestamp() * 1000)
        by_subscription.setdefault(event.external_subscription_id, {}).setdefault(
            event.transaction_id, LedgerEntry(event, appended_ms))
    return by_subscription


async def first_kept_ms(js: Any, stream: str) -> int | None:
    """When the oldest message the stream still keeps was stored, if the stream ever dropped any
    (retention); None when it holds everything it was ever given."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return None
    if info.state.first_seq <= 1 or not info.state.messages:
        return None
    first = await js.get_msg(stream, info.state.first_seq)
    return int(first.time.timestamp() * 1000)


async def dead_lettered_ids(js: Any, stream: str) -> set[str]:
    """Transaction ids in the dead-letter stream: Lago will never hold them, by design."""
    messages = await read_stream(js, stream, f"{stream.lower()}.>")
    return {m.headers.get("Tokenmeter-Transaction-Id", "") for m in messages if m.headers} - {""}
