"""Copies of one answer logged apart, billed once: an inference with a request id and no time of its own, logged
several times at its log times (a Claude Agent SDK step's message per content block, Claude Code's transcript
lines as the answer streams), is held until its delivery is read and billed then as one.

Its input and cache counts, the same on every copy, bill at the first copy's time. Its output grows from copy to
copy: where the copy that ends the answer (its stop reason) was read, the output bills from it at its time; where
none was, the largest running count bills with the input.

A transcript's lines can straddle two deliveries (a log agent's batches), or a sync of the file can catch an answer
half written. The answer's ids carry its first copy's time, which the later delivery does not hold: the first
copy's time of each answer a delivery left unended, and the output it billed, are kept in the stream memory by log
stream (or S3 object), so that the later delivery bills the input and cache under the same ids and times (copies,
dropped downstream) and of the output only what it adds: the output the ending copy counts, or else the largest
running count, less what was billed before. Claude Code's transcripts never end an answer (anthropics/claude-code
#27361: every line's ``stop_reason`` is null, its output a running count), so without this the output the later
lines counted was lost, and with an ending copy the running count was billed twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Inferences held to the end of a delivery: past this many, those held are billed.
HELD_KEPT = 10_000
# First copies kept per log stream: an answer streams for minutes, a delivery is retried for hours.
_REMEMBERED_MS = 24 * 3600 * 1000
_REMEMBERED_PER_GROUP = 1000


@dataclass(frozen=True, slots=True)
class Remembered:
    """What an earlier delivery billed of an answer it left unended."""

    first_ms: int  # its first copy's time: that of its ids
    output: int | None  # the output billed so far (None: kept by a release that did not note it)


class AnswerMemory(Protocol):
    """The answers a log stream left unended, by identity, kept between invocations (stream_memory.py)."""

    def answers(self, group: str) -> dict[str, Remembered]: ...

    def keep_answers(self, group: str, answers: dict[str, Remembered]) -> None: ...


@dataclass(slots=True)
class HeldBill:
    """Events to deliver: ``counts`` of one inference under ``identity``, at ``timestamp_ms``."""

    identity: str
    subscription: str
    model: str
    timestamp_ms: int
    counts: dict[str, int]


@dataclass(slots=True)
class _Held:
    subscription: str
    model: str
    timestamp_ms: int  # the first copy's time
    counts: dict[str, int]  # the largest of each type over the copies
    group: str | None  # the log stream whose later deliveries may hold more copies (None: no memory of it)
    earlier: Remembered | None  # what an earlier delivery, which held its first copy, billed of it
    final_ms: int | None = None  # the time of the copy that ends the answer, where one was read
    top_ms: int = 0  # the time of the first copy with the largest output


class HeldAnswers:
    """The held inferences of one invocation; ``finish`` once at its end."""

    def __init__(self, memory: AnswerMemory | None = None):
        self._held: dict[str, _Held] = {}
        self._memory = memory
        self._kept: dict[str, dict[str, Remembered]] = {}  # by log stream: the answers left unended known
        self._changed: set[str] = set()

    def hold(self, identity: str, subscription: str, model: str, timestamp_ms: int, billed: dict[str, int],
             ends: bool, group: str | None = None) -> list[HeldBill]:
        """Keep a copy: the first copy's subscription and time, the largest count of each type, the time of the
        copy that ends it (``ends``). ``group``: the log stream of a source whose answers can straddle deliveries.
        Returns what had to be billed to make room (nothing, but past HELD_KEPT)."""
        held = self._held.get(identity)
        if held is not None:
            counts = held.counts
            if billed.get("output", 0) > counts.get("output", 0):
                held.top_ms = timestamp_ms
            for token_type, tokens in billed.items():
                if tokens > counts.get(token_type, 0):
                    counts[token_type] = tokens
            if ends and held.final_ms is None:
                held.final_ms = timestamp_ms
            return []
        bills = self.bill() if len(self._held) >= HELD_KEPT else []
        earlier = self._remembered(group).get(identity) if group is not None else None
        self._held[identity] = _Held(subscription, model, timestamp_ms if earlier is None else earlier.first_ms,
                                     billed, group, earlier, timestamp_ms if ends else None, timestamp_ms)
        return bills

    def bill(self) -> list[HeldBill]:
        """Each held inference's events, its time part of its ids (as for any record billed at its delivery's time).
        An answer whose first copy an earlier delivery billed bills of its output what that delivery did not."""
        held, self._held = self._held, {}
        bills = []
        for identity, inference in held.items():
            counts = dict(inference.counts)
            output = counts.pop("output", 0)
            earlier = inference.earlier
            before = 0 if earlier is None else earlier.output
            if before is None:  # noted by an earlier release: the running count it billed is not known
                if inference.final_ms is not None and output:
                    bills.append(self._output(identity, inference, inference.final_ms, output))
            elif output > before:
                if inference.final_ms is not None:  # the whole output, as one delivery holding every copy bills it
                    bills.append(self._output(identity, inference, inference.final_ms, output - before))
                elif earlier is None:
                    counts["output"] = output  # billed with the input at the first copy's time, as it always was
                else:  # what the running count added since: under ids of its own, told apart by what came before
                    bills.append(self._output(f"{identity}|from:{before}", inference, inference.top_ms,
                                              output - before))
            if inference.group is not None and before is not None and (
                    output > before if earlier is not None else inference.final_ms is None):
                self._remembered(inference.group)[identity] = Remembered(inference.timestamp_ms, max(output, before))
                self._changed.add(inference.group)
            if counts:
                bills.append(HeldBill(f"{identity}|at:{inference.timestamp_ms}", inference.subscription,
                                      inference.model, inference.timestamp_ms, counts))
        return bills

    @staticmethod
    def _output(identity: str, inference: _Held, at: int, tokens: int) -> HeldBill:
        return HeldBill(f"{identity}|at:{at}", inference.subscription, inference.model, at, {"output": tokens})

    def finish(self) -> list[HeldBill]:
        """What is still held, and what was billed of answers left unended, given to the memory to keep."""
        bills = self.bill()
        if self._memory is not None:
            for group in sorted(self._changed):
                self._memory.keep_answers(group, _recent(self._kept[group]))
        self._kept, self._changed = {}, set()
        return bills

    def _remembered(self, group: str) -> dict[str, Remembered]:
        kept = self._kept.get(group)
        if kept is None:
            kept = self._kept[group] = self._memory.answers(group) if self._memory is not None else {}
        return kept


def _recent(kept: dict[str, Remembered]) -> dict[str, Remembered]:
    """The answers of the newest first copies, by log time (a backfill's times are old): those of the last day, at
    most a bound."""
    newest = max((answer.first_ms for answer in kept.values()), default=0)
    recent = sorted((item for item in kept.items() if item[1].first_ms >= newest - _REMEMBERED_MS),
                    key=lambda item: item[1].first_ms)
    return dict(recent[-_REMEMBERED_PER_GROUP:])
