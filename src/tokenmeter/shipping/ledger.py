"""Reading a stream of the ledger back: a range of messages through an ephemeral consumer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

_FETCH = 1000


async def read_stream(js: Any, stream: str, subjects: str, since: datetime | None = None,
                      first_seq: int | None = None, last_seq: int | None = None) -> list[Any]:
    """The messages of ``stream`` on ``subjects``: all, those stored since ``since``, or those between two
    stream sequences (both included)."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    last = min(info.state.last_seq, last_seq) if last_seq else info.state.last_seq
    if not info.state.messages or last < (first_seq or 0):
        return []
    if first_seq:
        policy, start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": first_seq}, None
    elif since:
        policy, start = {"deliver_policy": DeliverPolicy.BY_START_TIME}, since.isoformat().replace("+00:00", "Z")
    else:
        policy, start = {"deliver_policy": DeliverPolicy.ALL}, None
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, opt_start_time=start, inactive_threshold=60.0,
                            mem_storage=True, **policy)
    sub = await js.pull_subscribe(subjects, durable=None, stream=stream, config=config)
    messages: list[Any] = []
    try:
        # Ask for no more than the consumer holds: a fetch for more waits out its timeout.
        pending = (await sub.consumer_info()).num_pending
        while pending > 0:
            try:
                batch = await sub.fetch(min(_FETCH, pending), timeout=1.0)
            except nats.errors.TimeoutError:
                break
            pending -= len(batch)
            messages.extend(m for m in batch if m.metadata.sequence.stream <= last)
            if batch[-1].metadata.sequence.stream >= last:
                break
    finally:
        await sub.unsubscribe()
    return messages
