"""Identifiers that travel from a log to Lago: subscription ids, metric codes, model names, transaction ids.

They come from logs, so anything can be in them. Each must survive every hop unchanged: JSON in SQS,
a NATS subject token and header (a header value loses CR/LF and edge spaces, and the server drops a
connection whose control line passes 4 KiB), and a Lago path segment. So an identifier is valid
Unicode (no lone surrogate), at most 256 characters, with no control character and no leading or
trailing whitespace.
"""

from __future__ import annotations

import unicodedata
from typing import Any

MAX_IDENTIFIER_CHARS = 256


def identifier_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an identifier, or None when it can."""
    if not isinstance(value, str) or not value:
        return "required, a non-empty string"
    if len(value) > MAX_IDENTIFIER_CHARS:
        return f"at most {MAX_IDENTIFIER_CHARS} characters, got {len(value):,}"
    if value.isascii() and value.isprintable() and value[0] != " " and value[-1] != " ":
        return None  # the usual id, without the slower checks below
    if value != value.strip():
        return "no leading or trailing whitespace"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode (a lone surrogate)"
    if any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in value):
        return "no control characters (CR, LF, tab, NUL, ...)"
    return None


# Identifiers found valid, for the Lambda environment: subscriptions, metric codes and models repeat in every batch,
# so their checks run once each (a few thousand at most are kept; past that, the rest are checked each time).
VALID_IDENTIFIERS: set[str] = set()
_VALID_KEPT = 10_000


def repeated_identifier_problem(value: Any) -> str | None:
    """``identifier_problem`` for a value that repeats (a subscription, a metric code, a model): remembered once valid."""
    if type(value) is str and value in VALID_IDENTIFIERS:
        return None
    problem = identifier_problem(value)
    if problem is None and len(VALID_IDENTIFIERS) < _VALID_KEPT:
        VALID_IDENTIFIERS.add(value)
    return problem
