"""Dead letters: records that could not become usage events, with why (DESIGN.md contract)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class DeadLetter:
    """``{"reason", "detail", "source", "record"}``: enough to understand and replay the record."""

    reason: str
    detail: str
    source: str
    record: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail, "source": self.source, "record": self.record}


def truncate_record(text: str, limit: int) -> str:
    """The raw record, cut at ``limit`` UTF-8 bytes with a note of its full size."""
    if len(text) <= limit // 4:  # cannot exceed the limit even at 4 bytes a character
        return text
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore") + f"... [truncated from {len(encoded)} bytes]"
