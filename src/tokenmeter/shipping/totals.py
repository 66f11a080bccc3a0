"""Running ledger totals: what each document sums, and how a batch of ledger messages changes it.

Totals are kept per subscription in two shapes, so that any Lago billing period (any interval, a
calendar or anniversary start, a customer timezone whose offset is a multiple of 15 minutes) is a union
of whole UTC days plus parts of at most two days read at 15-minute resolution:
- ``DayTotals``, one per (subscription, UTC day): per 15-minute slice and (code, model, token type),
  units and events, the first and last stream sequence the slice's events were stored at (where
  healing reads them back), and the ledger sequences dead-lettered since;
- ``SubscriptionTotals``, one per subscription: per UTC day and code, units and events (a period check
  reads this one document plus its two edge days), arrivals still inside the settle window, the Lago
  customer once known, and usage Lago stores but never bills, by reason.

Every document records, per stream, the last sequence applied to it (``through``). A batch changes a
document only with the messages past its ``through``, so a pass killed between two writes is finished by
the next without counting a message twice or skipping one. Nothing here touches NATS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

from tokenmeter.core import timestamp_ms

SLICE_MS = 15 * 60_000
DAY_MS = 86_400_000
SLICES_PER_DAY = DAY_MS // SLICE_MS
# Streams feeding the totals, as they are named in ``through``.
LEDGER, DEAD, UNBILLABLE = "ledger", "dead", "unbillable"
_SEP = "\x1f"  # between code, model and token type in a key: never inside an identifier
_RECENT_AT_MOST = 4000  # settle-window entries a subscription keeps before folding them per code

Units = int | Decimal


@dataclass(frozen=True, slots=True)
class PropertyNames:
    tokens: str = "tokens"
    model: str = "model"
    token_type: str = "token_type"


@dataclass(frozen=True, slots=True)
class Usage:
    """What one ledger message adds to the totals."""

    seq: int
    subscription: str
    code: str
    model: str
    token_type: str
    timestamp_ms: int
    units: Units
    appended_ms: int
    transaction_id: str = ""

    @property
    def day(self) -> str:
        return day_key(self.timestamp_ms)

    @property
    def slice(self) -> int:
        return (self.timestamp_ms % DAY_MS) // SLICE_MS

    @property
    def key(self) -> str:
        return f"{self.code}{_SEP}{self.model}{_SEP}{self.token_type}"


def usage_of(data: bytes, seq: int, appended_ms: int, names: PropertyNames) -> Usage | None:
    """The usage a ledger message carries, or None when it has no subscription, code and time to count it
    under. Dead letters are read back with this same function, so what a dead letter takes away is exactly
    what its message added; an event lago_sync refuses for any other reason is counted, then taken away by
    its dead letter. (Deliberately lighter than the contract: this runs for every ledger message.)"""
    try:
        event = orjson.loads(data)
        subscription, code, stamp = event["external_subscription_id"], event["code"], event["timestamp"]
        properties = event.get("properties") or {}
        if not (isinstance(subscription, str) and isinstance(code, str) and isinstance(properties, dict)):
            return None
        when = timestamp_ms(stamp)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return Usage(seq, subscription, code, str(properties.get(names.model, "")), str(properties.get(names.token_type, "")),
                 when, units_of(properties.get(names.tokens, 0)), appended_ms, str(event.get("transaction_id", "")))


def units_of(value: Any) -> Units:
    """Tokens as lago_sync would ship them: a whole number as is, a decimal exactly, anything else 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (float, str)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return 0
        return number if number.is_finite() else 0
    return 0


def plus(a: Any, b: Units) -> Units:
    """Sum of two stored unit counts (ints stay ints; a decimal travels as its string)."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    total = Decimal(str(a)) + Decimal(str(b))
    return int(total) if total == total.to_integral_value() else total


def stored(units: Units) -> int | str:
    return units if isinstance(units, int) else format(units, "f")


def day_key(ms: int) -> str:
    return _day_name(ms // DAY_MS)


@lru_cache(maxsize=4096)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86_400, UTC).strftime("%Y%m%d")


def day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp()) * 1000


def split_key(key: str) -> tuple[str, str, str]:
    code, model, token_type = key.split(_SEP)
    return code, model, token_type


def unsettled(arrived_before_ms: int, seq: int, settled_by_ms: int | None, shipped_through: int) -> bool:
    """Whether Lago may not show it yet: it arrived after ``settled_by_ms`` or lago_sync has not had it."""
    return seq > shipped_through or (settled_by_ms is not None and arrived_before_ms - 1 > settled_by_ms)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A USAGE_DLQ message that names the ledger message it stands for."""

    seq: int  # in the dead-letter stream
    source_seq: int  # in the ledger
    reason: str
    usage: Usage | None  # None: its message was never counted


def taking_away(letters: list[DeadLetter], done: int, repeats: set[int]) -> Iterator[tuple[DeadLetter, Usage]]:
    """The letters a document has not applied (past ``done``) that take usage away (not repeats)."""
    for letter in letters:
        if letter.seq > done and letter.usage is not None and letter.seq not in repeats:
            yield letter, letter.usage


@dataclass(frozen=True, slots=True)
class Unbillable:
    seq: int  # in the unbillable stream
    subscription: str
    reason: str
    units: Units


@dataclass
class SliceTotals:
    first_seq: int
    last_seq: int
    by_key: dict[str, list[Any]] = field(default_factory=dict)  # key -> [units, events]

    def events(self, code: str) -> int:
        return sum(v[1] for k, v in self.by_key.items() if k.partition(_SEP)[0] == code)


@dataclass
class DayTotals:
    through: dict[str, int] = field(default_factory=dict)
    slices: dict[int, SliceTotals] = field(default_factory=dict)
    dead: dict[int, int] = field(default_factory=dict)  # ledger seq -> the first dead-letter seq naming it

    def add(self, items: list[Usage], through: int) -> None:
        done = self.through.get(LEDGER, 0)
        for u in items:
            if u.seq <= done:
                continue
            part = self.slices.get(u.slice)
            if part is None:
                part = self.slices[u.slice] = SliceTotals(u.seq, u.seq)
            part.first_seq, part.last_seq = min(part.first_seq, u.seq), max(part.last_seq, u.seq)
            row = part.by_key.get(u.key)
            if row is None:
                part.by_key[u.key] = [u.units, 1]
            else:
                row[0], row[1] = plus(row[0], u.units), row[1] + 1
        self.through[LEDGER] = max(done, through)

    def repeats(self, letters: list[DeadLetter]) -> set[int]:
        """The dead letters (by seq) for a ledger message an earlier letter already took away: the same answer
        whether or not this document was written with them before a crash."""
        first = dict(self.dead)
        found = set()
        for letter in sorted(letters, key=lambda x: x.seq):
            earlier = first.setdefault(letter.source_seq, letter.seq)
            if earlier < letter.seq:
                found.add(letter.seq)
        return found

    def remove(self, letters: list[DeadLetter], through: int, repeats: set[int]) -> None:
        done = self.through.get(DEAD, 0)
        for letter, u in taking_away(letters, done, repeats):
            self.dead.setdefault(letter.source_seq, letter.seq)
            row = self.slices[u.slice].by_key[u.key] if u.slice in self.slices else None
            if row is not None:
                row[0], row[1] = plus(row[0], -u.units), row[1] - 1
        self.through[DEAD] = max(done, through)

    def to_json(self) -> bytes:
        return orjson.dumps({
            "through": self.through,
            "slices": {str(i): [s.first_seq, s.last_seq, {k: [stored(v[0]), v[1]] for k, v in s.by_key.items()}]
                       for i, s in self.slices.items()},
            "dead": {str(k): v for k, v in self.dead.items()},
        })

    @classmethod
    def from_json(cls, data: bytes | None) -> DayTotals:
        if not data:
            return cls()
        doc = orjson.loads(data)
        return cls(doc["through"], {int(i): SliceTotals(s[0], s[1], {k: [_units(v[0]), v[1]] for k, v in s[2].items()})
                                    for i, s in doc["slices"].items()},
                   {int(k): v for k, v in doc["dead"].items()})


@dataclass
class SubscriptionTotals:
    subscription: str
    through: dict[str, int] = field(default_factory=dict)
    days: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # day -> code -> [units, events]
    # Arrivals not settled yet (inside the settle window, or not yet delivered to lago_sync), per second of
    # arrival, slice and code: [arrived before (ms), slice start ms (-1: any), code, units, events, last seq].
    recent: list[list[Any]] = field(default_factory=list)
    unbillable: dict[str, list[Any]] = field(default_factory=dict)  # reason -> [units, events]
    customer: str | None = None  # Lago's external customer id, once looked up

    def add(self, items: list[Usage], through: int, settle_from_ms: int | None, shipped_through: int) -> None:
        """``settle_from_ms``: arrivals before it have settled (None: no settle window); ``shipped_through``:
        the last ledger seq lago_sync has been handed (later ones stay unsettled whatever their age)."""
        done = self.through.get(LEDGER, 0)
        recent = {(r[0], r[1], r[2]): r for r in self.recent}
        for u in items:
            if u.seq <= done:
                continue
            row = self.days.setdefault(u.day, {}).get(u.code)
            if row is None:
                self.days[u.day][u.code] = [u.units, 1]
            else:
                row[0], row[1] = plus(row[0], u.units), row[1] + 1
            before = u.appended_ms // 1000 * 1000 + 1000
            if unsettled(before, u.seq, settle_from_ms, shipped_through):
                key = (before, u.timestamp_ms // SLICE_MS * SLICE_MS, u.code)
                entry = recent.get(key)
                if entry is None:
                    recent[key] = [*key, u.units, 1, u.seq]
                else:
                    entry[3], entry[4], entry[5] = plus(entry[3], u.units), entry[4] + 1, max(entry[5], u.seq)
        self.recent = list(recent.values())
        self.through[LEDGER] = max(done, through)
        self.settle(settle_from_ms, shipped_through)

    def remove(self, letters: list[DeadLetter], through: int, repeats: set[int]) -> None:
        """Take dead letters away; ``repeats`` holds the dead-letter seqs their day documents call repeats."""
        done = self.through.get(DEAD, 0)
        for _, u in taking_away(letters, done, repeats):
            row = self.days.get(u.day, {}).get(u.code)
            if row is not None:
                row[0], row[1] = plus(row[0], -u.units), row[1] - 1
        self.through[DEAD] = max(done, through)

    def add_unbillable(self, items: list[Unbillable], through: int) -> None:
        done = self.through.get(UNBILLABLE, 0)
        for item in items:
            if item.seq > done:
                row = self.unbillable.setdefault(item.reason, [0, 0])
                row[0], row[1] = plus(row[0], item.units), row[1] + 1
        self.through[UNBILLABLE] = max(done, through)

    def settle(self, settle_from_ms: int | None, shipped_through: int) -> None:
        """Forget arrivals that are settled; fold the rest per code if there are too many to keep apart
        (a folded entry counts as unsettled in any period, which only widens the margin)."""
        self.recent = [r for r in self.recent if unsettled(r[0], r[5], settle_from_ms, shipped_through)]
        if len(self.recent) > _RECENT_AT_MOST:
            folded: dict[tuple[int, str], list[Any]] = {}
            for before, _, code, units, events, seq in self.recent:
                minute = -(-before // 60_000) * 60_000
                row = folded.setdefault((minute, code), [minute, -1, code, 0, 0, 0])
                row[3], row[4], row[5] = plus(row[3], units), row[4] + events, max(row[5], seq)
            self.recent = list(folded.values())

    def forget_before(self, day: str) -> None:
        """Drop days older than the totals are kept for."""
        for old in [d for d in self.days if d < day]:
            del self.days[old]

    def to_json(self) -> bytes:
        return orjson.dumps({
            "subscription": self.subscription, "through": self.through, "customer": self.customer,
            "days": {d: {c: [stored(v[0]), v[1]] for c, v in codes.items()} for d, codes in self.days.items()},
            "recent": [[b, s, c, stored(u), e, q] for b, s, c, u, e, q in self.recent],
            "unbillable": {r: [stored(v[0]), v[1]] for r, v in self.unbillable.items()},
        })

    @classmethod
    def from_json(cls, subscription: str, data: bytes | None) -> SubscriptionTotals:
        if not data:
            return cls(subscription)
        doc = orjson.loads(data)
        return cls(doc["subscription"], doc["through"],
                   {d: {c: [_units(v[0]), v[1]] for c, v in codes.items()} for d, codes in doc["days"].items()},
                   [[b, s, c, _units(u), e, q] for b, s, c, u, e, q in doc["recent"]],
                   {r: [_units(v[0]), v[1]] for r, v in doc["unbillable"].items()}, doc.get("customer"))


@dataclass
class Checkpoint:
    """How far each stream has been applied to every document; written after all of them."""

    through: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason -> dead letters
    unbillable: dict[str, int] = field(default_factory=dict)  # reason -> events
    # The ledger had already dropped messages (retention) when the totals began: periods that start
    # before this are not judged.
    complete_from_ms: int | None = None
    cursor: str = ""  # the last subscription checked, so a long list is worked through in turns

    def count(self, stream: str, reasons: list[tuple[int, str]], through: int) -> None:
        done = self.through.get(stream, 0)
        counts = self.dead_letters if stream == DEAD else self.unbillable
        for seq, reason in reasons:
            if seq > done:
                counts[reason] = counts.get(reason, 0) + 1
        self.through[stream] = max(done, through)

    def to_json(self) -> bytes:
        return orjson.dumps({"through": self.through, "dead_letters": self.dead_letters, "unbillable": self.unbillable,
                             "complete_from_ms": self.complete_from_ms, "cursor": self.cursor})

    @classmethod
    def from_json(cls, data: bytes | None) -> Checkpoint:
        if not data:
            return cls()
        doc = orjson.loads(data)
        return cls(doc["through"], doc["dead_letters"], doc["unbillable"], doc.get("complete_from_ms"),
                   doc.get("cursor", ""))


def _units(value: Any) -> Units:
    return value if isinstance(value, int) else Decimal(value)
