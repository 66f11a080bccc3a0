"""Records as they move through count_tokens, and what becomes of each."""


from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Why a record could not become usage events (the dead letter's "reason").
MALFORMED_JSON = "malformed_json"
UNKNOWN_FORMAT = "unknown_format"
INVALID_RECORD = "invalid_record"
INVALID_COUNTS = "invalid_counts"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_UTF8 = "invalid_utf8"
INVALID_IDENTIFIER = "invalid_identifier"
UNATTRIBUTED = "unattributed"
NO_TOKENIZER = "no_tokenizer"
TOKENIZER_ERROR = "tokenizer_error"
DECODE_ERROR = "decode_error"
OBJECT_MISSING = "object_missing"
OBJECT_CHANGED = "object_changed"
OBJECT_TOO_LARGE = "object_too_large"
RECORD_TOO_LARGE = "record_too_large"
TOO_MANY_DEAD_LETTERS = "too_many_dead_letters"
UNKNOWN_TRIGGER = "unknown_trigger"

# Why a record legitimately carries nothing to bill (counted, not dead-lettered).
NOT_FINAL = "not_final"
NO_USAGE = "no_usage"
STREAM_CHUNK = "stream_chunk"  # a part of a streamed response: the stream bills once, from the part that counts
AGENT_SUMMARY = "agent_summary"  # an agent run's (or turn's) sum of its model calls: the calls bill
PLATFORM_LINE = "platform_line"
EMPTY_OBJECT = "empty_object"
OWN_STATE = "own_state"  # count_tokens' own objects in the log bucket (stream_memory.py)
BEDROCK_BODY = "bedrock_body"  # a body Bedrock's invocation logging put apart: its log record bills it
TEST_EVENT = "test_event"  # the s3:TestEvent S3 sends when a bucket's notifications are set up

UNPARSED: Any = object()  # RawRecord.value of a record whose text is still to be parsed

# Lines the Lambda platform writes into every function's log group.
PLATFORM_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START ", "EXTENSION\t")


@dataclass(slots=True)
class RawRecord:
    """One log record as the trigger delivered it, before it is understood."""

    source: str  # where it came from, for people: cloudwatch:group:stream:id, s3://bucket/key#line=3
    identity: str  # stable across re-deliveries; seeds the transaction ids
    text: str | bytes
    fallback_ms: int | None  # the log event's (or object's) time, for records without their own
    value: Any = UNPARSED  # already-decoded JSON (elements of a JSON array)
    lossy: bool = False  # invalid UTF-8 was replaced while decoding
    origin: str | None = None  # the S3 object it was read from: dead letters are capped per object
    json_at: int = 0  # where the JSON starts in ``text`` (after a log line's prefix, kept for the dead letter)

    @property
    def parsed(self) -> bool:
        return self.value is not UNPARSED


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


class Unavailable(Exception):
    """Raised when something the invocation needs fails now (state in S3 that cannot be read, a usage queue
    that does not take events): not the record's fault, so the invocation fails and Lambda delivers it
    again; deterministic ids keep the retry from billing twice."""


@dataclass(frozen=True)
class ReadLimits:
    """How much of an S3 object is read, and how (see s3_objects.py)."""

    max_record_bytes: int = 16 << 20
    max_object_bytes: int = 1 << 30
    max_document_bytes: int = 32 << 20


class DeadLetterBudget:
    """Dead letters per S3 object: past ``cap`` (0: no cap) the rest of the object is one letter."""

    def __init__(self, cap: int):
        self.cap = cap
        self._counts: dict[str, int] = {}
        self.exhausted: set[str] = set()  # checked on every line: a set lookup, nothing more

    def note(self, origin: str | None) -> None:
        if origin is not None:
            count = self._counts[origin] = self._counts.get(origin, 0) + 1
            if self.cap and count >= self.cap:
                self.exhausted.add(origin)

    def spent(self, origin: str) -> bool:
        return origin in self.exhausted


@dataclass
class Summary:
    """What one invocation did: every record is in exactly one of the three outcomes."""

    records: int = 0
    metered: int = 0
    events: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    # SQS messages (ids) of S3 notifications left for SQS to deliver again: a partial batch failure.
    retry: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "metered": self.metered,
            "events": self.events,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }
