"""Records as they move through count_tokens, and what becomes of each."""


from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

# Why a record could not become usage events (the dead letter's "reason").
MALFORMED_JSON = "malformed_json"
UNKNOWN_FORMAT = "unknown_format"
INVALID_RECORD = "invalid_record"
INVALID_COUNTS = "invalid_counts"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_UTF8 = "invalid_utf8"
UNATTRIBUTED = "unattributed"
NO_TOKENIZER = "no_tokenizer"
TOKENIZER_ERROR = "tokenizer_error"
DECODE_ERROR = "decode_error"
OBJECT_MISSING = "object_missing"
UNKNOWN_TRIGGER = "unknown_trigger"

# Why a record legitimately carries nothing to bill (counted, not dead-lettered).
NOT_FINAL = "not_final"
NO_USAGE = "no_usage"
PLATFORM_LINE = "platform_line"
EMPTY_OBJECT = "empty_object"

_UNPARSED: Any = object()


def decode_json(content: str | bytes) -> Any:
    """Parse JSON fast; ValueError (with orjson's message) if it is not JSON."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        try:
            # Escaped lone surrogates ("\udcff") are valid JSON syntax that orjson refuses.
            return json.loads(content)
        except ValueError:
            raise exc from None


@dataclass(slots=True)
class RawRecord:
    """One log record as the trigger delivered it, before it is understood."""

    source: str  # where it came from, for people: cloudwatch:group:stream:id, s3://bucket/key#line=3
    identity: str  # stable across re-deliveries; seeds the transaction ids
    text: str | bytes
    fallback_ms: int | None  # the log event's (or object's) time, for records without their own
    value: Any = _UNPARSED  # already-decoded JSON (elements of a JSON array)
    lossy: bool = False  # invalid UTF-8 was replaced while decoding

    @property
    def parsed(self) -> bool:
        return self.value is not _UNPARSED


@dataclass(slots=True)
class Inference:
    """What one record says about one inference."""

    model: str
    request_id: str | None
    timestamp_ms: int | None
    counts: dict[str, int] | None = None  # token type -> tokens; None for text-only records
    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    completion: str | None = None


@dataclass(slots=True)
class Skipped:
    """A log line or object that legitimately holds nothing to bill."""

    reason: str
    source: str


class RecordError(Exception):
    """Raised while reading a record that must be dead-lettered with ``reason``."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass
class Summary:
    """What one invocation did: every record is in exactly one of the three outcomes."""

    records: int = 0
    metered: int = 0
    events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "metered": self.metered,
            "events": self.events,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }
