"""Events that can never be billed: copied to the USAGE_DLQ stream with why, then terminated."""

from __future__ import annotations

from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

_YEAR = 365 * 86_400


def dead_letter_subject(stream: str, original_subject: str) -> str:
    """``usage.<sub>.<code>`` -> ``usage_dlq.<sub>.<code>``: dead letters keep their subscription."""
    _, _, rest = original_subject.partition(".")
    return f"{stream.lower()}.{rest}"


async def ensure_dead_letter_stream(js: Any, stream: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"], storage=StorageType.FILE,
                                         retention=RetentionPolicy.LIMITS, max_age=_YEAR))


async def dead_letter(js: Any, stream: str, msg: Any, reason: str, detail: str) -> None:
    """Copy the message to the dead-letter stream, then terminate it; raises if the copy is not stored."""
    transaction_id = (msg.headers or {}).get("Nats-Msg-Id", "")
    await js.publish(
        dead_letter_subject(stream, msg.subject),
        msg.data,
        stream=stream,
        headers={
            "Nats-Msg-Id": f"dlq:{transaction_id or msg.metadata.sequence.stream}",
            "Tokenmeter-Reason": reason,
            # Header values are one line; Lago's messages and ours fit in a few hundred bytes.
            "Tokenmeter-Detail": " ".join(detail.split())[:1000],
            "Tokenmeter-Source": f"nats:{msg.metadata.stream}:{msg.metadata.sequence.stream}",
            "Tokenmeter-Transaction-Id": transaction_id,
        },
    )
    await msg.term()
