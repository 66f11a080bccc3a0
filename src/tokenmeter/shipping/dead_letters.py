"""Side streams of the ledger, each message a copy of a usage event with why it is there:
- USAGE_DLQ: events that can never be billed (copied, then terminated in USAGE);
- USAGE_UNBILLABLE: events Lago stores but will never bill (copied once Lago holds them, then acked).
"""

from __future__ import annotations

from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

_YEAR = 365 * 86_400


def side_subject(stream: str, original_subject: str) -> str:
    """``usage.<sub>.<code>`` -> ``usage_dlq.<sub>.<code>``: copies keep their subscription and code."""
    _, _, rest = original_subject.partition(".")
    return f"{stream.lower()}.{rest}"


async def ensure_side_stream(js: Any, stream: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"], storage=StorageType.FILE,
                                         retention=RetentionPolicy.LIMITS, max_age=_YEAR))


async def copy_to(js: Any, stream: str, msg: Any, reason: str, detail: str, msg_id: str | None = None,
                  transaction_id: str | None = None) -> None:
    """Store a copy of the message in ``stream`` with why; raises if it is not stored."""
    transaction_id = transaction_id or (msg.headers or {}).get("Nats-Msg-Id", "")
    await js.publish(
        side_subject(stream, msg.subject),
        msg.data,
        stream=stream,
        headers={
            "Nats-Msg-Id": msg_id or f"{stream}:{transaction_id or msg.metadata.sequence.stream}",
            "Tokenmeter-Reason": reason,
            # Header values are one line; Lago's messages and ours fit in a few hundred bytes.
            "Tokenmeter-Detail": " ".join(detail.split())[:1000],
            "Tokenmeter-Source": f"nats:{msg.metadata.stream}:{msg.metadata.sequence.stream}",
            "Tokenmeter-Transaction-Id": transaction_id,
        },
    )


async def dead_letter(js: Any, stream: str, msg: Any, reason: str, detail: str) -> None:
    """Copy the message to the dead-letter stream, then terminate it; raises if the copy is not stored."""
    await copy_to(js, stream, msg, reason, detail)
    await msg.term()
