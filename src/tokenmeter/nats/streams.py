"""The USAGE stream (the usage ledger) and lago_sync's durable consumer: created if missing,
checked if present. Creating what exists is a no-op; replicas, age limit and dedup window are changed in
place (a stack's parameters may change them); any other difference is a clear error."""

from __future__ import annotations

from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from .exceptions import StreamConfigConflict
from .settings import NatsSettings

CONSUMER_ACK_WAIT_SECONDS = 60.0
CONSUMER_MAX_ACK_PENDING = 20_000


def stream_config(settings: NatsSettings) -> StreamConfig:
    return StreamConfig(
        name=settings.stream,
        subjects=settings.subjects,
        retention=RetentionPolicy.LIMITS,  # a ledger: kept until max_age, not deleted on ack
        storage=StorageType.FILE,
        max_age=settings.max_age_seconds,
        duplicate_window=settings.duplicate_window_seconds,
        num_replicas=settings.replicas,
    )


def consumer_config(settings: NatsSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=settings.consumer,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=CONSUMER_ACK_WAIT_SECONDS,
        max_ack_pending=CONSUMER_MAX_ACK_PENDING,
        filter_subject=f"{settings.subject_prefix}.>",
    )


async def ensure_stream(js: Any, settings: NatsSettings) -> None:
    wanted = stream_config(settings)
    try:
        info = await js.stream_info(settings.stream)
    except NotFoundError:
        await js.add_stream(wanted)
        return
    have = info.config
    fixed = [("subjects", sorted(have.subjects or []), sorted(wanted.subjects)),
             ("storage", have.storage, wanted.storage),
             ("retention", have.retention, wanted.retention)]
    changeable = [("max_age", have.max_age, wanted.max_age),
                  ("duplicate_window", have.duplicate_window, wanted.duplicate_window),
                  ("num_replicas", have.num_replicas, wanted.num_replicas)]
    if any(not _same(h, w) for _, h, w in fixed):
        _check(f"stream {settings.stream}", fixed + changeable)
    if any(not _same(h, w) for _, h, w in changeable):
        # JetStream changes these on a live stream (replicas too, in a cluster), keeping every message.
        have.max_age, have.duplicate_window, have.num_replicas = wanted.max_age, wanted.duplicate_window, \
            wanted.num_replicas
        await js.update_stream(have)


async def ensure_consumer(js: Any, settings: NatsSettings) -> None:
    wanted = consumer_config(settings)
    try:
        info = await js.consumer_info(settings.stream, settings.consumer)
    except NotFoundError:
        await js.add_consumer(settings.stream, wanted)
        return
    have = info.config
    _check(f"consumer {settings.consumer} on stream {settings.stream}", [
        ("ack_policy", have.ack_policy, wanted.ack_policy),
        ("filter_subject", have.filter_subject, wanted.filter_subject),
        ("deliver_policy", have.deliver_policy, wanted.deliver_policy),
    ])


def _check(what: str, fields: list[tuple[str, Any, Any]]) -> None:
    conflicts = [f"{name} is {have!r}, tokenmeter needs {want!r}" for name, have, want in fields if not _same(have, want)]
    if conflicts:
        raise StreamConfigConflict(f"existing {what} conflicts: " + "; ".join(conflicts))


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(have, (int, float)):
        return abs(have - want) < 1e-3
    return have == want
