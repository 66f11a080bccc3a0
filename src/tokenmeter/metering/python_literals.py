"""Records an app logged as Python prints them, not as JSON.

- A dict: `logging.info(response.model_dump())` or `print(record)` give `{'id': 'chatcmpl-...', 'usage':
  {'prompt_tokens': 12, ...}, 'system_fingerprint': None}`; read with `ast.literal_eval`.
- An SDK's response object (pydantic's repr): `print(response)` or `logger.info("%s", response)` give
  `ChatCompletion(id='chatcmpl-...', ..., usage=CompletionUsage(prompt_tokens=12, ...))`, or Anthropic's
  `Message(id='msg_...', ..., usage=Usage(input_tokens=10, ...))`; read as the object its fields make, from its
  syntax tree: a class called by name with keyword arguments is an object, literals are themselves, an enum
  member's repr (`<FinishReason.STOP: 'STOP'>`) its value, anything else (a positional argument, an attribute,
  an operator) is no record.

Nothing is run. Only text small enough is read: a syntax tree costs many times the text's size in memory.
"""

from __future__ import annotations

import ast
import re
from typing import Any

MAX_LITERAL_CHARS = 64 << 10  # a response with its text fits; its syntax tree stays within tens of MB
_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, MemoryError)
# Where an SDK object's repr starts: a class name, not a method or attribute ("x.Foo(" or "foo(").
_SDK_OBJECT = re.compile(r"(?<![\w.])[A-Z][A-Za-z0-9_]*\(")
_MAX_DEPTH = 64
# An enum member as its repr writes it (the Google GenAI SDK's `finish_reason=<FinishReason.STOP: 'STOP'>`): its value.
_ENUM = re.compile(r"<[A-Z]\w*\.\w+: ('(?:[^'\\\n]|\\.)*'|-?\d+)>")


def python_dict(text: str | bytes) -> dict[Any, Any] | None:
    """The dict ``text`` writes in Python's syntax; None where it is none (or too large to read this way)."""
    text = readable_text(text)
    if text is None or not text.startswith(("{'", '{"')) or not text.endswith("}"):
        return None
    try:
        value = ast.literal_eval(text)
    except _ERRORS:
        return None
    return value if type(value) is dict else None


def sdk_object(text: str | bytes) -> dict[str, Any] | None:
    """The fields of the SDK object whose repr ``text`` holds (after any prefix), as a dict; None for any other."""
    text = readable_text(text)
    found = _SDK_OBJECT.search(text) if text is not None and text.endswith(")") else None
    if text is None or found is None:
        return None
    try:
        value = _value(ast.parse(_ENUM.sub(r"\1", text[found.start():]), mode="eval").body, 0)
    except _ERRORS:
        return None
    return value if type(value) is dict else None


def readable_text(text: str | bytes) -> str | None:
    """The text, stripped, if it is small enough to read (told before a long line is copied or decoded)."""
    decoded = decoded_text(text)
    if decoded is None:
        return None
    decoded = decoded.strip()
    return decoded if len(decoded) <= MAX_LITERAL_CHARS else None


def decoded_text(text: str | bytes) -> str | None:
    """The text as it is, if it may be small enough to read: its length is told before it is decoded."""
    if len(text) > 4 * MAX_LITERAL_CHARS:  # (UTF-8 takes up to four bytes a character)
        return None
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return text


def _value(node: ast.AST, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        if any(keyword.arg is None for keyword in node.keywords):
            raise ValueError("**arguments")
        return {keyword.arg: _value(keyword.value, depth + 1) for keyword in node.keywords}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(item, depth + 1) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_value(key, depth + 1): _value(value, depth + 1)  # type: ignore[arg-type]
                for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    raise ValueError(f"not a literal: {type(node).__name__}")
