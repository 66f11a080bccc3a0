"""What Lambda and logging libraries write around a record in a JSON log line.

With its log format set to JSON, Lambda writes its own events as `{"time", "type": "platform.start", "record"}`
(the JSON form of the START, END and REPORT lines), and the Python runtime writes each `logging` call as
`{"timestamp", "level", "message", "logger", "requestId"}`, where an app that logs a response as JSON text
puts it in `message`. Powertools' Logger writes `{"level", "location", "message", "timestamp", "service", ...}`,
with a logged dict as `message` itself and the keys an app appends (a tenant, a customer) beside it. The Python
runtime's `message` of a logged dict is the dict as Python prints it (python_literals.py); the Node.js runtime's,
of `console.log("reply", obj)`, the object as util.inspect prints it (js_inspect.py).
"""

from __future__ import annotations

from typing import Any

from tokenmeter.core import decode_json

from .js_inspect import js_object
from .python_literals import decoded_text, python_dict, sdk_object

# The wrapper's own keys: the line's time and level, not the record's (Powertools' time is not even RFC 3339).
_WRAPPER_KEYS = ("timestamp", "level", "message")
# LlamaIndex's ChatResponse and CompletionResponse (llama_index.core.base.llms.types), as model_dump writes them:
# the provider's answer in `raw`, beside the message or text the library made of it.
_LLAMA_INDEX_KEYS = frozenset(("raw", "delta", "logprobs", "additional_kwargs"))
_LLAMA_INDEX_OWN = frozenset(("message", "text", *_LLAMA_INDEX_KEYS))


def is_platform_event(data: dict[str, Any]) -> bool:
    kind = data.get("type")
    return type(kind) is str and kind.startswith("platform.") and "record" in data


def printed_record(line: str | bytes, at: int = 0) -> dict[Any, Any] | None:
    """A record an app printed rather than logged as JSON, from a line whose JSON-looking part starts at ``at``
    (after any prefix): a dict as Python prints it, an SDK's object as its repr writes it (found in the whole
    line: its class name comes before any brace), an object as Node's console.log prints it; None for any other."""
    text = decoded_text(line)
    if text is None:
        return None
    braced = text[at:] if at else text
    value = python_dict(braced)
    if value is None:
        value = sdk_object(text)
    return js_object(braced) if value is None else value


def logged_record(data: dict[str, Any]) -> dict[str, Any] | None:
    """The record a log line's ``message`` holds, as a JSON object or as JSON text, with the line's other keys
    beneath its own (for attribution: keys an app appends to every line); None for any other line."""
    if type(data.get("level")) is not str:
        return None
    message = data.get("message")
    if type(message) is str and (at := message.find("{")) >= 0:
        # Read as a bare line is: past a prefix ("usage: {...}"), as JSON (escaped lone surrogates, nesting too
        # deep), as the Python dict `logging.info(a_dict)` writes, or as Node's `console.log("reply", obj)` does.
        try:
            message = decode_json(message[at:])
        except ValueError:
            message = printed_record(message, at)
    if type(message) is not dict:
        return None
    return {**{key: value for key, value in data.items() if key not in _WRAPPER_KEYS}, **message}


def llama_index_raw(data: dict[str, Any]) -> dict[str, Any] | None:
    """The provider's answer a LlamaIndex response holds in `raw` (with any keys an app logged beside, for
    attribution), or None for any other record."""
    raw = data.get("raw")
    if type(raw) is not dict or not data.keys() >= _LLAMA_INDEX_KEYS or ("message" not in data and "text" not in data):
        return None
    return {**{key: value for key, value in data.items() if key not in _LLAMA_INDEX_OWN}, **raw}
