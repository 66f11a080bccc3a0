"""Records an app logged as Python writes a dict, not as JSON: `logging.info(response.model_dump())` or
`print(record)` give `{'id': 'chatcmpl-...', 'usage': {'prompt_tokens': 12, ...}, 'system_fingerprint': None}`.

Read with `ast.literal_eval`, which builds literals and runs nothing, and only for text that starts as a dict
does and is small enough: its syntax tree costs many times the text's size in memory."""

from __future__ import annotations

import ast
from typing import Any

MAX_LITERAL_CHARS = 64 << 10  # a response with its text fits; its syntax tree stays within tens of MB


def python_dict(text: str | bytes) -> dict[Any, Any] | None:
    """The dict ``text`` writes in Python's syntax; None where it is none (or too large to read this way)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    text = text.strip()
    if len(text) > MAX_LITERAL_CHARS or not text.startswith(("{'", '{"')) or not text.endswith("}"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None
    return value if type(value) is dict else None
