"""Dead letters: records that could not become usage events, with why (DESIGN.md contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .events import ascii_json
from .ids import record_key

_TRUNCATION_NOTE = "... [truncated from {} bytes]"
_TRUNCATED = re.compile(r"\.\.\. \[truncated from \d+ bytes\]\Z")


@dataclass(slots=True)
class DeadLetter:
    """``{"id", "reason", "detail", "source", "record"}``: enough to understand and replay the record."""

    reason: str
    detail: str
    source: str
    record: str
    # For a single record: what its transaction ids derive from, and its log event's time, so that
    # a replay after a fix bills it under the same ids it would have had.
    identity: str | None = None
    fallback_ms: int | None = None

    @property
    def id(self) -> str:
        """Deterministic: a record dead-lettered again on a re-delivery gets the same id, so readers can
        drop the copy (SQS standard queues have no deduplication of their own)."""
        return record_key(f"{self.reason}\0{self.source}\0{self.record}")

    def as_dict(self) -> dict[str, str | int]:
        letter: dict[str, str | int] = {"id": self.id, "reason": self.reason, "detail": self.detail,
                                        "source": self.source, "record": self.record}
        if self.identity is not None:
            letter["identity"] = self.identity
        if self.fallback_ms is not None:
            letter["fallback_ms"] = self.fallback_ms
        return letter

    @property
    def truncated(self) -> bool:
        return _TRUNCATED.search(self.record) is not None

    @classmethod
    def from_dict(cls, letter: dict) -> DeadLetter:
        return cls(str(letter.get("reason", "")), str(letter.get("detail", "")), str(letter.get("source", "")),
                   str(letter.get("record", "")), letter.get("identity"), letter.get("fallback_ms"))


def truncate_record(text: str, limit: int) -> str:
    """The raw record, cut at ``limit`` UTF-8 bytes with a note of its full size."""
    if len(text) <= limit // 4:  # cannot exceed the limit even at 4 bytes a character
        return text
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore") + _TRUNCATION_NOTE.format(len(encoded))


def fitted_json(letter: DeadLetter, max_bytes: int) -> bytes:
    """The letter as ASCII JSON of at most ``max_bytes`` (where its other fields leave room): a record within the
    configured size in UTF-8 can still pass it once escaped, six bytes for a control character and up to six for
    each non-ASCII one, and a queue refuses the message. Such a record is cut further, with the note of its whole
    size."""
    body = ascii_json(letter.as_dict())
    if len(body) <= max_bytes:
        return body
    found = _TRUNCATED.search(letter.record)
    text = letter.record if found is None else letter.record[:found.start()]
    note = found.group() if found is not None else _TRUNCATION_NOTE.format(len(text.encode("utf-8", "replace")))

    def cut(keep: int) -> bytes:
        return ascii_json(replace(letter, record=text[:keep] + note).as_dict())

    # The longest prefix that fits, found by halving: escapes vary from character to character.
    low, high = 0, min(len(text), max_bytes)
    while low < high:
        middle = (low + high + 1) // 2
        if len(cut(middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return cut(low)
