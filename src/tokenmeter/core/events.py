"""The usage event: what every function speaks (see DESIGN.md, "Usage event")."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import orjson

from .exceptions import InvalidEventError
from .identifiers import identifier_problem, repeated_identifier_problem

# Disjoint token types: their sum is every token processed, each once. Audio and image tokens, where a
# log splits them out, are taken out of input/output the same way cached and reasoning tokens are.
TOKEN_TYPES = ("input", "output", "cached_input", "cache_write", "reasoning", "input_audio", "output_audio",
               "input_image", "output_image")

MAX_TOKENS = 10**9
# The envelope's identifiers and their checks: a transaction id is new with each event, the others repeat.
_IDENTIFIERS = (("transaction_id", identifier_problem), ("external_subscription_id", repeated_identifier_problem),
                ("code", repeated_identifier_problem))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


@dataclass(slots=True)
class UsageEvent:
    """One token type of one inference, ready for Lago."""

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: str
    properties: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "transaction_id": self.transaction_id,
            "external_subscription_id": self.external_subscription_id,
            "code": self.code,
            "timestamp": self.timestamp,
            "properties": self.properties,
        }

    def to_json(self) -> bytes:
        """The event as ASCII JSON bytes, as SQS bodies and NATS payloads carry it."""
        return ascii_json(self.as_dict())

    @classmethod
    def from_dict(cls, data: Any) -> UsageEvent:
        """Validate a decoded JSON event; raises InvalidEventError naming each bad field."""
        if isinstance(data, dict):  # the checks _envelope_errors makes, in one pass: every door runs this per event
            transaction_id, subscription = data.get("transaction_id"), data.get("external_subscription_id")
            code, timestamp, properties = data.get("code"), data.get("timestamp"), data.get("properties", {})
            if (identifier_problem(transaction_id) is None and repeated_identifier_problem(subscription) is None
                    and repeated_identifier_problem(code) is None and isinstance(timestamp, str)
                    and _is_unix_seconds(timestamp) and isinstance(properties, dict)):
                return cls(transaction_id, subscription, code, timestamp, properties)
        raise InvalidEventError(_envelope_errors(data))


def _envelope_errors(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {"event": "must be a JSON object"}
    errors: dict[str, str] = {}
    for name, check in _IDENTIFIERS:
        problem = check(data.get(name))
        if problem is not None:
            errors[name] = problem
    timestamp = data.get("timestamp")
    if not isinstance(timestamp, str) or not _is_unix_seconds(timestamp):
        errors["timestamp"] = 'required, Unix seconds as a string, e.g. "1732646400.123"'
    if not isinstance(data.get("properties", {}), dict):
        errors["properties"] = "must be a JSON object"
    return errors


def decode_json(content: str | bytes) -> Any:
    """Parse JSON fast; ValueError (with the parser's message) if it is not JSON we can take.

    orjson refuses escaped lone surrogates ("\\udcff"), valid JSON syntax: the standard library takes
    them (the identifier rules then refuse them field by field). Nesting too deep for either parser is
    a ValueError too, never a RecursionError that would take a batch down.
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc) or "depth limit" in str(exc):
            raise ValueError(f"JSON nested too deeply: {exc}") from None
        try:
            return json.loads(content)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        except ValueError:
            raise exc from None


def ascii_json(value: Any) -> bytes:
    """Compact JSON with everything outside ASCII escaped.

    Identifiers come from logs, so anything can be in them: SQS refuses some
    characters (U+FFFE, lone surrogates) unless escaped, and orjson refuses
    lone surrogates; the standard library's ensure_ascii handles both.
    """
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, integers past 64 bits
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()
    if encoded.isascii():
        return encoded
    # Outside ASCII a character can only stand inside a string, as itself: escaped here as the standard library
    # escapes it, at half the cost of writing the whole value again (every event of a customer or model named
    # outside ASCII takes this way).
    return encoded.decode().encode("ascii", _JSON_ESCAPE)


def _json_escaped(error: UnicodeEncodeError) -> tuple[str, int]:
    # The standard library's escaping of the characters ASCII lacks (a surrogate pair past U+FFFF), unquoted.
    return encode_basestring_ascii(error.object[error.start:error.end])[1:-1], error.end


_JSON_ESCAPE = "tokenmeter.json_escape"
codecs.register_error(_JSON_ESCAPE, _json_escaped)


# Seconds with more digits than this are no time (year 31 million), and past 4,300 digits int() refuses them
# with a ValueError that no door expects.
_MAX_SECONDS_DIGITS = 15


def _is_unix_seconds(text: str) -> bool:
    whole, _, fraction = text.partition(".")
    return (whole.isascii() and whole.isdigit() and len(whole) <= _MAX_SECONDS_DIGITS
            and (not fraction or (fraction.isascii() and fraction.isdigit())))


def format_timestamp(epoch_ms: int) -> str:
    """Unix seconds with milliseconds as a string: what Lago reads exactly.

    Integer arithmetic, because a float would round some milliseconds.
    """
    if epoch_ms >= 1000:  # the digits, with a point before the last three: once per inference, so kept quick
        digits = str(epoch_ms)
        return f"{digits[:-3]}.{digits[-3:]}"
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{seconds}.{millis:03d}"


def timestamp_ms(timestamp: str) -> int:
    """A usage event's timestamp (Unix seconds, optional fraction) in milliseconds; extra digits dropped."""
    whole, _, fraction = timestamp.partition(".")
    return int(whole) * 1000 + int((fraction + "000")[:3])


def parse_rfc3339_ms(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 date-time; ValueError if it is not one.

    Finer fractions than microseconds (Ollama writes nanoseconds) are dropped;
    a time without an offset is read as UTC.
    """
    if len(text) < 19 or text[10] not in "Tt ":
        raise ValueError(f"not an RFC 3339 date-time: {text[:40]!r}")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Integer division of timedeltas: exact, where float seconds would round.
    return (parsed - _EPOCH) // _MILLISECOND
