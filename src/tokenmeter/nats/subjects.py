"""Subjects per event: ``<prefix>.<subscription token>.<code>``.

A subscription id is hostile input: '.', '*', '>' or whitespace in it would
let one customer's usage reach another's subject. Every byte outside
[A-Za-z0-9_-] is written as ``~XX`` (UTF-8, upper-case hex), '~' included, so
the encoding is a single safe token, reversible, and distinct ids never share one.
"""

from __future__ import annotations

import re
from functools import lru_cache

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ALL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_TOKEN = re.compile(r"(?:[A-Za-z0-9_-]|~[0-9A-F]{2})+")
_EMPTY = "~"  # never produced by escaping, which always adds two hex digits


def encode_token(value: str) -> str:
    """The subject token for an id: only [A-Za-z0-9_~-]."""
    if not value:
        return _EMPTY
    if _ALL_SAFE.fullmatch(value):
        return value
    return "".join(chr(b) if b in _SAFE else f"~{b:02X}" for b in value.encode("utf-8", "surrogatepass"))


def decode_token(token: str) -> str:
    """The id a token encodes; ValueError for a token encode_token never produces."""
    if token == _EMPTY:
        return ""
    if not _TOKEN.fullmatch(token):
        raise ValueError(f"not an encoded subject token: {token!r}")
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "~":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(token[i]))
            i += 1
    return raw.decode("utf-8", "surrogatepass")


@lru_cache(maxsize=8192)  # a batch names few subscriptions, many times each
def subject_for(prefix: str, subscription_id: str, code: str) -> str:
    """The subject of one usage event."""
    return f"{prefix}.{encode_token(subscription_id)}.{encode_token(code)}"
