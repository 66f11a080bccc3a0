"""Records a Node.js app logged with `console.log(object)`: util.inspect's notation, not JSON.

In a Lambda function's text log format, `console.log(completion)` writes
`{ id: 'chatcmpl-...', usage: { prompt_tokens: 19, ... }, choices: [ [Object] ] }` over several lines: keys bare
where they are identifiers, strings in single quotes (double or back quotes where the string holds a single
quote), `undefined`, a `Date` as its ISO string unquoted, a class name before an instance's braces, and what
lies deeper than two levels elided as `[Object]` or `[Array]`. It is turned into JSON token by token, nothing
run; what util.inspect elided (deeper objects, functions, circular references) is null. A response's usage sits
within the two levels it prints.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .python_literals import readable_text

_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\$]|\\.)*`)
  | (?P<elided>\[(?:Object|Array|Function|Circular|Getter|Setter|Getter/Setter|class|AsyncFunction)\b[^\]\n]*\])
  | (?P<skip><ref\ \*\d+>|\.\.\.\ \d+\ more\ items?)
  | (?P<date>[+-]?\d{4,6}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)
  | (?P<number>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?n?)
  | (?P<word>[A-Za-z_$][\w$]*)
  | (?P<punct>[{}\[\]:,])
""", re.VERBOSE | re.DOTALL)
_ESCAPE = re.compile(r"""\\(x[0-9a-fA-F]{2}|.)|(")""", re.DOTALL)
_MAX_DEPTH = 64
_WORDS = {"null": "null", "undefined": "null", "NaN": "null", "Infinity": "null", "true": "true", "false": "false"}


def js_object(text: str | bytes) -> dict[str, Any] | None:
    """The object util.inspect printed in ``text`` (from its first "{"); None where it is none (or too large)."""
    text = readable_text(text)
    start = text.find("{") if text is not None else -1
    if text is None or start < 0 or not text.endswith("}"):
        return None
    tokens = [(kind, value) for kind, value in _tokens(text[start:]) if kind not in ("space", "skip")]
    out: list[str] = []
    depth = 0
    for position, (kind, value) in enumerate(tokens):
        after = tokens[position + 1][1] if position + 1 < len(tokens) else ""
        if kind == "string":
            out.append(_json_string(value))
        elif kind == "date":
            out.append(f'"{value}"')  # a Date prints as its ISO string, unquoted
        elif kind == "number":
            out.append(value.rstrip("n"))
        elif kind == "word" and after == ":":
            out.append(json.dumps(value))
        elif after in ("{", "[") and kind in ("word", "elided"):
            continue  # a class name, or "[Object: null prototype]", before the braces it names
        elif kind == "word" and value in _WORDS:
            out.append(_WORDS[value])
        elif kind == "elided":
            out.append("null")
        elif kind == "punct":
            if value in "]}" and out and out[-1] == ",":
                out.pop()  # what was left out ("... 5 more items") left its comma behind
            depth += 1 if value in "{[" else -1 if value in "]}" else 0
            if depth > _MAX_DEPTH:
                return None  # as the JSON parsers refuse it: no record nests this deep
            out.append(value)
        else:
            return None  # a Symbol, an expression: not a record util.inspect can give back
    try:
        value = json.loads("".join(out))
    except (ValueError, RecursionError):
        return None
    return value if type(value) is dict else None


def _tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    while at < len(text):
        match = _TOKENS.match(text, at)
        if match is None:
            return [("unknown", text[at:at + 20])]  # js_object gives up on it
        found.append((match.lastgroup or "", match.group()))
        at = match.end()
    return found


def _json_string(quoted: str) -> str:
    """A JS string literal (util.inspect's escapes) as a JSON one."""
    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            return '\\"'  # a double quote inside single quotes
        escaped = match.group(1)
        if escaped[0] == "x":
            return "\\u00" + escaped[1:]
        if escaped in ("'", "`", "$"):
            return escaped
        return "\\" + escaped

    return '"' + _ESCAPE.sub(replace, quoted[1:-1]) + '"'
