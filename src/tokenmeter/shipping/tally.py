"""The incremental pass: ledger, dead-letter and unbillable messages past the checkpoint, into the totals.

Each stream is read from just after its checkpoint with an ephemeral consumer. The checkpoint lives in the
totals bucket beside the documents it describes (a durable consumer's ack floor cannot move in the same
write as them). A batch is applied to every document it touches, each taking only what it does not hold
yet; subscriptions it touched are marked due; the checkpoint moves last. A kill at any point leaves the
checkpoint behind documents that already hold part of the batch, and the next pass skips exactly that part.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from nats.js.errors import NotFoundError

from tokenmeter.core import MeteringConfig
from tokenmeter.nats import NatsSettings
from tokenmeter.nats.reader import StreamReader

from .reconcile_settings import ReconcileSettings
from .totals import (
    DEAD,
    LEDGER,
    UNBILLABLE,
    Checkpoint,
    DayTotals,
    DeadLetter,
    PropertyNames,
    SubscriptionTotals,
    Unbillable,
    Usage,
    day_key,
    usage_of,
)
from .totals_store import CHECKPOINT, TotalsStore, day_doc_key, gather_bounded, subscription_key

_FETCH = 1000
BATCH = 20_000  # messages applied between checkpoints: bounds memory, not correctness


@dataclass(frozen=True)
class TallySettings:
    ledger_stream: str
    ledger_subjects: str
    consumer: str  # lago_sync's: what it has been handed is no longer waiting on it
    dead_letter_stream: str
    unbillable_stream: str
    names: PropertyNames
    settle_seconds: float
    keep_days: float
    batch: int = BATCH


@dataclass
class TallyResult:
    applied: dict[str, int] = field(default_factory=dict)  # stream -> messages read this pass
    through: dict[str, int] = field(default_factory=dict)
    caught_up: bool = True  # every stream read to the end it had when the pass began
    touched: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "through": self.through, "caught_up": self.caught_up,
                "touched_subscriptions": len(self.touched)}


# A test stops the pass between two steps through this hook (the step's name is passed).
Step = Callable[[str], None]


class Tally:
    def __init__(self, js: Any, store: TotalsStore, settings: TallySettings, deadline: float,
                 step: Step | None = None):
        self.js, self.store, self.settings, self.deadline = js, store, settings, deadline
        self.step = step or (lambda name: None)
        self.result = TallyResult()
        self.shipped_through = 0
        self._previous: dict[str, tuple[Any, int]] = {}
        self._written: dict[str, tuple[Any, int]] = {}

    async def run(self) -> TallyResult:
        await self._ledger()
        await self._dead_letters()
        await self._unbillable()
        checkpoint, _ = await self.store.checkpoint()
        self.result.through = dict(checkpoint.through)
        return self.result

    # --- the three streams ---
    async def _ledger(self) -> None:
        s = self.settings
        self.shipped_through = await shipped_through(self.js, s.ledger_stream, s.consumer)
        checkpoint, _ = await self.store.checkpoint()
        start = checkpoint.through.get(LEDGER, 0)
        first_seq, first_ms = await _first_kept(self.js, s.ledger_stream)
        if first_seq > start + 1 and first_ms > (checkpoint.complete_from_ms or 0):
            # The stream dropped messages the totals never counted: periods before them cannot be judged.
            await self._move_checkpoint(LEDGER, start, lambda c: setattr(c, "complete_from_ms", first_ms))
        async with aclosing(self._batches(s.ledger_stream, s.ledger_subjects, start)) as batches:
            async for batch, end in batches:
                usages = [u for seq, ts, _, data in batch if (u := usage_of(data, seq, ts, s.names)) is not None]
                await self._apply_usage(usages, end)
                await self._move_checkpoint(LEDGER, end)

    async def _dead_letters(self) -> None:
        s = self.settings
        checkpoint, _ = await self.store.checkpoint()
        counted_through = checkpoint.through.get(LEDGER, 0)
        stream = s.dead_letter_stream
        async with aclosing(self._batches(stream, f"{stream.lower()}.>", checkpoint.through.get(DEAD, 0))) as batches:
            async for batch, last in batches:
                letters, end, waiting = [], last, False
                for seq, _, headers, data in batch:
                    source_stream, source_seq = _source(headers)
                    if source_stream == s.ledger_stream and source_seq > counted_through:
                        # Its message came after this pass read the ledger: the letter waits for the next pass.
                        end, waiting = seq - 1, True
                        break
                    usage = usage_of(data, source_seq, 0, s.names) if source_stream == s.ledger_stream else None
                    letters.append(DeadLetter(seq, source_seq, headers.get("Tokenmeter-Reason", "?"), usage))
                await self._apply_dead(letters, end)
                await self._move_checkpoint(DEAD, end, lambda c, ls=letters, e=end: c.count(
                    DEAD, [(x.seq, x.reason) for x in ls], e))
                if waiting:
                    return

    async def _unbillable(self) -> None:
        s = self.settings
        checkpoint, _ = await self.store.checkpoint()
        stream = s.unbillable_stream
        async with aclosing(self._batches(stream, f"{stream.lower()}.>", checkpoint.through.get(UNBILLABLE, 0))) as batches:
            async for batch, end in batches:
                await self._apply_unbillable(batch, end)

    async def _apply_unbillable(self, batch: list[tuple[int, int, Mapping[str, str], bytes]], end: int) -> None:
        s = self.settings
        items = []
        for seq, _, headers, data in batch:
            usage = usage_of(data, seq, 0, s.names)
            if usage is not None:
                items.append(Unbillable(seq, usage.subscription, headers.get("Tokenmeter-Reason", "?"), usage.units))
        by_subscription: dict[str, list[Unbillable]] = defaultdict(list)
        for item in items:
            by_subscription[item.subscription].append(item)
        await gather_bounded([self._change(
            subscription_key(sub), lambda d, sub=sub: SubscriptionTotals.from_json(sub, d),
            lambda doc, its=its: doc.add_unbillable(its, end)) for sub, its in by_subscription.items()])
        self.step("unbillable:documents")
        await self._move_checkpoint(UNBILLABLE, end, lambda c, its=items, e=end: c.count(
            UNBILLABLE, [(x.seq, x.reason) for x in its], e))

    # --- applying a batch ---
    async def _apply_usage(self, usages: list[Usage], end: int) -> None:
        s = self.settings
        now_ms = int(time.time() * 1000)
        settle_from = now_ms - int(s.settle_seconds * 1000) if s.settle_seconds > 0 else None
        keep_from = day_key(now_ms - int(s.keep_days * 86_400_000))
        by_day: dict[tuple[str, str], list[Usage]] = defaultdict(list)
        by_subscription: dict[str, list[Usage]] = defaultdict(list)
        for u in usages:
            by_day[(u.subscription, u.day)].append(u)
            by_subscription[u.subscription].append(u)
        await gather_bounded([self._change(day_doc_key(sub, day), DayTotals.from_json,
                                                lambda doc, its=its: doc.add(its, end))
                              for (sub, day), its in by_day.items()])
        self.step("ledger:days")

        def add(doc: SubscriptionTotals, its: list[Usage]) -> None:
            doc.add(its, end, settle_from, self.shipped_through)
            doc.forget_before(keep_from)

        await gather_bounded([self._change(subscription_key(sub), lambda d, sub=sub: SubscriptionTotals.from_json(
            sub, d), lambda doc, its=its: add(doc, its)) for sub, its in by_subscription.items()])
        self.step("ledger:subscriptions")
        await self.store.mark_due(set(by_subscription))
        self.result.touched.update(by_subscription)
        self.step("ledger:due")

    async def _apply_dead(self, letters: list[DeadLetter], end: int) -> None:
        by_day: dict[tuple[str, str], list[DeadLetter]] = defaultdict(list)
        for letter in letters:
            if letter.usage is not None:
                by_day[(letter.usage.subscription, letter.usage.day)].append(letter)
        repeats: set[int] = set()

        def remove(doc: DayTotals, its: list[DeadLetter]) -> None:
            found = doc.repeats(its)
            repeats.update(found)
            doc.remove(its, end, found)

        await gather_bounded([self._change(day_doc_key(sub, day), DayTotals.from_json,
                                                lambda doc, its=its: remove(doc, its))
                              for (sub, day), its in by_day.items()])
        self.step("dead:days")
        by_subscription: dict[str, list[DeadLetter]] = defaultdict(list)
        for (sub, _), its in by_day.items():
            by_subscription[sub].extend(its)
        await gather_bounded([self._change(subscription_key(sub), lambda d, sub=sub: SubscriptionTotals.from_json(
            sub, d), lambda doc, its=its: doc.remove(its, end, repeats)) for sub, its in by_subscription.items()])
        self.step("dead:subscriptions")
        await self.store.mark_due(set(by_subscription))
        self.result.touched.update(by_subscription)

    async def _change(self, key: str, load: Callable[[bytes | None], Any], apply: Callable[[Any], None]) -> None:
        """A document changed over the copy this pass last wrote, if it has one (a ledger read in time order
        touches the same days batch after batch): no read back. Only the last batch's documents are kept."""
        self._written[key] = await self.store.change(key, load, apply, known=self._previous.get(key))

    def _batch_done(self) -> None:
        self._previous, self._written = self._written, {}

    async def _move_checkpoint(self, stream: str, end: int, also: Callable[[Any], None] | None = None) -> None:
        def move(checkpoint: Any) -> None:
            if also is not None:
                also(checkpoint)
            checkpoint.through[stream] = max(checkpoint.through.get(stream, 0), end)

        self.step(f"{stream}:checkpoint")
        await self.store.change(CHECKPOINT, Checkpoint.from_json, move)
        self._batch_done()
        self.step(f"{stream}:checkpointed")

    # --- reading ---
    async def _batches(self, stream: str, subjects: str, after: int) -> AsyncIterator[
            tuple[list[tuple[int, int, Mapping[str, str], bytes]], int]]:
        """Batches of (seq, stored at ms, headers, data) past ``after``, up to the stream's end as it is now."""
        try:
            info = await self.js.stream_info(stream)
        except NotFoundError:
            return
        last = info.state.last_seq
        self.result.applied.setdefault(stream, 0)
        if last <= after or not info.state.messages:
            return
        batch: list[tuple[int, int, Mapping[str, str], bytes]] = []
        seq = after
        async with StreamReader(self.js, stream, subjects, after) as reader:
            while seq < last:
                if time.monotonic() > self.deadline:
                    self.result.caught_up = False
                    break
                messages = await reader.next_batch(min(_FETCH, self.settings.batch - len(batch)))
                if not messages:
                    break  # the rest of the range was deleted or expired
                for msg in messages:
                    if msg.seq > last:
                        break  # stored after the pass began: the next pass reads it
                    seq = msg.seq
                    batch.append((seq, msg.stored_ms, msg.headers, msg.data))
                    self.result.applied[stream] += 1
                if len(batch) >= self.settings.batch:
                    yield batch, seq
                    batch = []
            if batch:
                yield batch, seq


async def shipped_through(js: Any, stream: str, consumer: str) -> int:
    """The last ledger seq lago_sync's consumer has been handed (0 before it exists)."""
    try:
        return (await js.consumer_info(stream, consumer)).delivered.stream_seq or 0
    except NotFoundError:
        return 0


async def _first_kept(js: Any, stream: str) -> tuple[int, int]:
    """The stream's first kept sequence and when it was stored (0, 0 when it has none)."""
    try:
        info = await js.stream_info(stream)
        if not info.state.messages:
            return 0, 0
        first = await js.get_msg(stream, info.state.first_seq)
    except NotFoundError:
        return 0, 0
    return info.state.first_seq, int(first.time.timestamp() * 1000)


def _source(headers: Mapping[str, str]) -> tuple[str, int]:
    """``nats:<stream>:<seq>`` -> (stream, seq); ("", 0) for a letter that names no ledger message."""
    kind, _, rest = headers.get("Tokenmeter-Source", "").partition(":")
    stream, _, seq = rest.rpartition(":")
    return (stream, int(seq)) if kind == "nats" and seq.isdigit() else ("", 0)



def tally_settings(nats: NatsSettings, settings: ReconcileSettings, config: MeteringConfig) -> TallySettings:
    names = config.property_names
    return TallySettings(nats.stream, f"{nats.subject_prefix}.>", nats.consumer, settings.dead_letter_stream,
                         settings.unbillable_stream,
                         PropertyNames(names["tokens"], names["model"], names["token_type"]),
                         settings.settle_seconds, settings.totals_keep_days)
