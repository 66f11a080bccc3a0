"""Gemini CLI's recorded chats: `~/.gemini/tmp/<project hash>/chats/session-<time>-<id>.jsonl` (chatRecordingService
in gemini-cli), as a sync to S3 or a log agent tailing them delivers them.

Each line is a record: the session's metadata (`sessionId`, `projectHash`, ...), a message (`id`, `timestamp`,
`type` user, gemini, info, error or warning, `content`), a metadata update (`$set`) or a rewind (`$rewindTo`). A
message is written again whole each time it changes (its tokens, its tool calls), under its own id and time. A
`gemini` message's `tokens` are the usageMetadata of the response it records, renamed (`input` the prompt with its
`cached` part, `tool` the tool-use prompt, `output` the candidates, `thoughts`), and its `model` the model that
answered: it bills under its id at its time, so its copies are the same events. Releases before the JSONL files
wrote the whole conversation as one JSON document, its messages under `messages`: read message by message.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, object_at, rfc3339_at
from .gemini import read_gemini
from .records import NO_USAGE, NOT_FINAL, Inference

_MESSAGE_TYPES = frozenset({"user", "gemini", "info", "error", "warning"})
# TokensSummary's names for the usageMetadata fields it copies.
_COUNTS = (("promptTokenCount", "input"), ("cachedContentTokenCount", "cached"), ("toolUsePromptTokenCount", "tool"),
           ("candidatesTokenCount", "output"), ("thoughtsTokenCount", "thoughts"))


def is_chat_record(data: dict[str, Any]) -> bool:
    """A line of a recorded chat: a message, the session's metadata, an update of it or a rewind."""
    if "content" in data and data.get("type") in _MESSAGE_TYPES:
        return type(data.get("id")) is str and type(data.get("timestamp")) is str
    return ("sessionId" in data and "projectHash" in data) or (len(data) == 1 and ("$set" in data or "$rewindTo" in data))


def chat_messages(data: dict[str, Any]) -> list[Any] | None:
    """The messages of a whole recorded chat (the JSON document of releases before the JSONL files), else None."""
    messages = data.get("messages")
    return messages if "sessionId" in data and "projectHash" in data and type(messages) is list else None


def read_chat_record(data: dict[str, Any]) -> Inference:
    """The inference of a `gemini` message with its tokens; NothingToBill for every other record (a `gemini` message
    written before its tokens came is a copy of one to come: `not_final`)."""
    if data.get("type") != "gemini":
        raise NothingToBill(NO_USAGE)
    tokens = object_at(data, "tokens")
    if not tokens:
        raise NothingToBill(NOT_FINAL)
    usage = {field: tokens.get(name) for field, name in _COUNTS}
    inference = read_gemini({"usageMetadata": usage, "model": data.get("model"), "responseId": f"gemini-cli:{data['id']}"})
    inference.timestamp_ms = rfc3339_at(data, "timestamp")
    return inference
