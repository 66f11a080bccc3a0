"""Dead letters: records that could not become usage events, with why (DESIGN.md contract)."""

from __future__ import annotations

from dataclasses import dataclass

from .ids import record_key


@dataclass(slots=True)
class DeadLetter:
    """``{"id", "reason", "detail", "source", "record"}``: enough to understand and replay the record."""

    reason: str
    detail: str
    source: str
    record: str

    @property
    def id(self) -> str:
        """Deterministic: a record dead-lettered again on a re-delivery gets the same id, so readers can
        drop the copy (SQS standard queues have no deduplication of their own)."""
        return record_key(f"{self.reason}\0{self.source}\0{self.record}")

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason, "detail": self.detail, "source": self.source,
                "record": self.record}


def truncate_record(text: str, limit: int) -> str:
    """The raw record, cut at ``limit`` UTF-8 bytes with a note of its full size."""
    if len(text) <= limit // 4:  # cannot exceed the limit even at 4 bytes a character
        return text
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore") + f"... [truncated from {len(encoded)} bytes]"
