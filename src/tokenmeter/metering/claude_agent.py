"""The Claude Agent SDK's messages as an app logs them (Claude Code's `--output-format stream-json` and its session
transcripts write the same).

- An assistant message is one step's API call. TypeScript and the wire: `{"type": "assistant", "message": {an
  Anthropic Messages API message}, "session_id", "uuid", "parent_tool_use_id"}`; the Python SDK's
  `AssistantMessage` written out (`dataclasses.asdict`): `{"content", "model", "usage", "message_id", ...}`. A step
  that answers with several content blocks comes as one message per block, all with the same id (the SDK's
  cost-tracking guide): billed under that id, the step bills once. None of them carries a time, and each is logged
  at its own: the step bills at the log time of its first message in the delivery, with the largest of each count
  over its messages (metering.py holds them to the delivery's end), because Claude Code writes a transcript's lines
  as the answer streams, the output so far on each. A transcript line's `timestamp` is its log time: a transcript
  uploaded again, grown, bills its steps at the same times, so under the same ids.
- A result message (`type: result`; Python's `ResultMessage`: `subtype`, `duration_api_ms`, `num_turns`) sums its
  query's steps, and in streaming-input mode runs on over the session's turns: `agent_summary`, since the steps
  bill. The other messages (the partial `stream_event`s, `user`, `system`; in a transcript, whose lines name the
  session `sessionId`, too) bill nothing, nor do a transcript's bookkeeping lines (`summary`,
  `file-history-snapshot`, `queue-operation`).
"""

from __future__ import annotations

from typing import Any

from .fields import rfc3339_ms
from .records import AGENT_SUMMARY, NO_USAGE, STREAM_CHUNK

_OWN_KEYS = frozenset(("type", "message"))
# The other messages, each told by the key that comes with it: (what it is, that key).
_OTHER_TYPES = {"stream_event": (STREAM_CHUNK, "event"), "user": (NO_USAGE, "message"), "system": (NO_USAGE, "subtype")}
# A transcript's bookkeeping lines, each told by the key that comes with it: the session's title, the files' state
# before a prompt, the prompts queued while Claude works.
_TRANSCRIPT_LINES = {"summary": "leafUuid", "file-history-snapshot": "snapshot", "queue-operation": "operation"}


def agent_step(data: dict[str, Any]) -> dict[str, Any] | None:
    """The Messages API message of an assistant message (the message's other keys beneath its own, for
    attribution); None for any other record."""
    if data.get("type") == "assistant":
        message = data.get("message")
        if type(message) is not dict or message.get("type") != "message" or "usage" not in message:
            return None
        return {**{key: value for key, value in data.items() if key not in _OWN_KEYS}, **message}
    message_id = data.get("message_id")
    if type(message_id) is str and type(data.get("usage")) is dict and "parent_tool_use_id" in data and "id" not in data:
        return {**data, "id": message_id}  # Python's AssistantMessage: the same message, its id named apart
    return None


def logged_at(data: dict[str, Any]) -> int | None:
    """The time a transcript line (or an app's log line around a message) was written, in ms: the step's log time,
    which stays the same when the transcript is read again, grown, from a later upload; None without one."""
    return rfc3339_ms(data.get("timestamp"))


def skip_reason(data: dict[str, Any]) -> str | None:
    """Why an Agent SDK message other than an assistant one bills nothing; None for any other record."""
    kind = data.get("type")
    if kind == "result":
        return AGENT_SUMMARY if "subtype" in data and "session_id" in data else None
    if type(kind) is str and kind in _OTHER_TYPES:
        reason, key = _OTHER_TYPES[kind]
        return reason if key in data and ("session_id" in data or "sessionId" in data) else None
    if kind is None and "num_turns" in data and "duration_api_ms" in data and "session_id" in data:
        return AGENT_SUMMARY  # Python's ResultMessage
    if type(kind) is str and kind in _TRANSCRIPT_LINES and _TRANSCRIPT_LINES[kind] in data:
        return NO_USAGE
    return None
