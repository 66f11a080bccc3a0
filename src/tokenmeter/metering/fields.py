"""Reading one field of a record: counts, ids, models and times, each checked with a clear error.

Shared by every format reader (formats.py and the readers beside it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import orjson

from tokenmeter.core import parse_rfc3339_ms
from tokenmeter.core.events import MAX_TOKENS

from .records import INVALID_COUNTS, INVALID_RECORD, INVALID_TIMESTAMP, NO_USAGE, Inference, RecordError


class NothingToBill(Exception):
    """Raised for a record that is valid but bills nothing (a non-final chunk, zero tokens)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def with_counts(model: str, request_id: str | None, timestamp: int | None, counts: dict[str, int]) -> Inference:
    if not any(counts.values()):
        raise NothingToBill(NO_USAGE)
    return Inference(model, request_id, timestamp, counts)


def carve(name: str, total: int, parts: dict[str, int]) -> dict[str, int]:
    """``total`` split into disjoint types: the reported parts taken out of it, the rest kept as ``name``.
    Cached and reasoning parts are always listed; a modality only when the log reports some."""
    kept = {kind: tokens for kind, tokens in parts.items() if tokens or kind in ("cached_input", "reasoning")}
    inside = sum(kept.values())
    if inside > total:
        detail = ", ".join(f"{kind} {tokens}" for kind, tokens in kept.items() if tokens)
        raise RecordError(INVALID_COUNTS, f"{detail} exceed the {name} tokens they are part of ({total})")
    return {name: total - inside, **kept}


def apart(keys: tuple[str, str, str, str], inputs: dict[str, Any], outputs: dict[str, Any],
          names: tuple[str, str] = ("usage", "usage")) -> dict[str, int]:
    """Input, cache reads, cache writes and output, where a provider reports each apart from the others (Bedrock,
    Anthropic): ``keys`` name them, the first three in ``inputs``, the last in ``outputs``."""
    holders = ((inputs, names[0]), (inputs, names[0]), (inputs, names[0]), (outputs, names[1]))
    return {kind: count_at(holder, key, f"{name}.{key}")
            for kind, key, (holder, name) in zip(("input", "cached_input", "cache_write", "output"), keys, holders)}


def count_at(holder: dict[str, Any], key: str, name: str) -> int:
    value = holder.get(key)
    if value is None:
        return 0
    if type(value) is not int or not 0 <= value <= MAX_TOKENS:
        raise RecordError(INVALID_COUNTS, f"{name} must be a whole number from 0 to 10^9, got {short(value)}")
    return value


def object_at(holder: dict[str, Any], key: str) -> dict[str, Any]:
    value = holder.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(INVALID_RECORD, f"{key!r} must be an object, got {short(value)}")
    return value


def list_at(holder: dict[str, Any], key: str, name: str) -> list[Any]:
    value = holder.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(INVALID_RECORD, f"{name} must be a list, got {short(value)}")
    return value


def model_at(holder: dict[str, Any], key: str) -> str:
    value = holder.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(INVALID_RECORD, f"{key!r} must name the model, got {short(value)}")
    return value


def first_model(holder: dict[str, Any], keys: tuple[str, ...], where: str, unnamed: str | None = None) -> str:
    """The first of ``keys`` in ``holder`` that names a model (a string, not blank, not ``unnamed``: a gateway's
    word for none); RecordError naming ``where`` if none does."""
    for key in keys:
        value = holder.get(key)
        if isinstance(value, str) and value.strip() and value != unnamed:
            return value
    raise RecordError(INVALID_RECORD, f"{where} names no model")


def id_at(holder: dict[str, Any], key: str) -> str | None:
    value = holder.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    raise RecordError(INVALID_RECORD, f"{key!r} must be a string id, got {short(value)}")


def rfc3339_ms(value: Any) -> int | None:
    """Milliseconds of an RFC 3339 time; None for anything else (where rfc3339_at would refuse it)."""
    return _time_ms(value) if type(value) is str else None


@functools.lru_cache(maxsize=4_096)  # Bedrock's whole-second times repeat within a log batch
def _time_ms(text: str) -> int | None:
    try:
        return parse_rfc3339_ms(text)
    except ValueError:
        return None


def rfc3339_at(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_rfc3339_ms(value)
        except ValueError:
            pass
    raise RecordError(INVALID_TIMESTAMP, f"{key!r} must be an RFC 3339 time, got {short(value)}")


def unix_seconds_at(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**11:
        return round(value * 1000)
    raise RecordError(INVALID_TIMESTAMP, f"{key!r} must be Unix seconds, got {short(value)}")


def unix_ms_at(holder: dict[str, Any], key: str) -> int | None:
    """Unix milliseconds, as gateways built on nginx write them: from its start time in seconds, times 1000, so a
    JSON encoder may write a fraction."""
    value = holder.get(key)
    if value is None:
        return None
    if type(value) in (int, float) and 0 <= value < 10**14:
        return round(value)
    raise RecordError(INVALID_TIMESTAMP, f"{key!r} must be Unix milliseconds, got {short(value)}")


def time_at(holder: dict[str, Any], key: str) -> int | None:
    value = holder.get(key)
    if isinstance(value, str):
        # isascii: str.isdigit() also takes digits such as "²" that float() refuses.
        if not (value.isascii() and value.replace(".", "", 1).isdigit()):
            return rfc3339_at(holder, key)
        value = float(value)
    return unix_seconds_at({key: value}, key)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def objects_read_back(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``data`` with those of ``keys`` that an export wrote as JSON text (an object or an array) read back; text that
    is not JSON is left as it is, for the reader that needs it to say so."""
    texts = {key: data[key] for key in keys if type(data.get(key)) is str and data[key][:1] in ("{", "[")}
    if not texts:
        return data
    read = dict(data)
    for key, text in texts.items():
        with contextlib.suppress(orjson.JSONDecodeError):
            read[key] = orjson.loads(text)
    return read


def page_items(data: dict[str, Any], key: str, is_item: Callable[[dict[str, Any]], Any]) -> list[Any] | None:
    """The items of a page of an API's answer, ``data[key]``, where ``is_item`` knows its first; else None."""
    items = data.get(key)
    if type(items) is list and items and type(items[0]) is dict and is_item(items[0]):
        return items
    return None
