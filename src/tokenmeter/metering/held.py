"""Copies of one answer logged apart, billed once: an inference with a request id and no time of its own, logged
several times at its log times (a Claude Agent SDK step's message per content block, Claude Code's transcript
lines as the answer streams), is held until its delivery is read and billed then as one.

Its input and cache counts, the same on every copy, bill at the first copy's time. Its output is a running count
that grows from copy to copy (Claude Code writes the output so far on each line, and never a last line with the
stop reason: anthropics/claude-code#27361): it bills as it grows, each copy that raises the largest count so far
billing what it adds, at its time, under ids named by the count it starts from. The copies that bill, and what
each bills, follow from the copies before them alone, so however the answer's copies are split between deliveries
or syncs of a growing transcript (a log agent's batches, an upload caught mid-answer, a backfill of the whole
file), each part bills the same events again: nothing twice, nothing missed.

A later delivery does not hold the copies before it: the first copy's time of each answer a delivery left unended,
and the largest output it saw, are kept in the stream memory by log stream (or S3 object), so that the later
delivery bills the input and cache under the same ids and times (copies, dropped downstream) and its output from
where the earlier one left it.
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
    output: int | None  # the largest output seen so far, billed (None: kept by a release that did not note it)


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
    counts: dict[str, int]  # the largest input and cache counts over the copies
    group: str | None  # the log stream whose later deliveries may hold more copies (None: no memory of it)
    earlier: Remembered | None  # what an earlier delivery, which held its first copy, billed of it
    output: int  # the largest output so far
    rises: list[tuple[int, int, int]]  # (time, from, to): each copy that raised the largest output
    ended_ms: int | None = None  # the time of the first copy that ends the answer (its stop reason)


# The first copy of an answer no later delivery can add to (no log stream named), as it came: (subscription, model,
# time, counts with the output, whether it ends the answer). Most answers are logged once (an app logging Anthropic's
# responses, which carry no time): kept so, one holds a tuple instead of a _Held with its dicts and list (1.5 of the
# 7.3 us such a record cost), and bills as a _Held of that one copy would. A second copy makes it a _Held.
_Copy = tuple[str, str, int, dict[str, int], bool]


class HeldAnswers:
    """The held inferences of one invocation; ``finish`` once at its end."""

    def __init__(self, memory: AnswerMemory | None = None):
        self._held: dict[str, _Held | _Copy] = {}
        self._memory = memory
        self._kept: dict[str, dict[str, Remembered]] = {}  # by log stream: the answers left unended known
        self._changed: set[str] = set()

    def hold(self, identity: str, subscription: str, model: str, timestamp_ms: int, billed: dict[str, int],
             ends: bool, group: str | None = None) -> list[HeldBill]:
        """Keep a copy: the first copy's subscription and time, the largest input and cache counts, each rise of
        the output. ``group``: the log stream of a source whose answers can straddle deliveries. Returns what had
        to be billed to make room (nothing, but past HELD_KEPT)."""
        held = self._held.get(identity)
        bills: list[HeldBill] = []
        if held is None:
            if len(self._held) >= HELD_KEPT:
                bills = self.bill()
            if group is None:
                self._held[identity] = (subscription, model, timestamp_ms, billed, ends)
                return bills
            earlier = self._remembered(group).get(identity)
            start = 0 if earlier is None or earlier.output is None else earlier.output
            held = self._held[identity] = _Held(subscription, model, timestamp_ms if earlier is None else
                                                earlier.first_ms, {}, group, earlier, start, [])
        elif type(held) is tuple:  # a second copy: the first one, kept as it came, held first
            first_subscription, first_model, first_ms, first_billed, first_ends = held
            held = self._held[identity] = _Held(first_subscription, first_model, first_ms, {}, None, None, 0, [])
            _add_copy(held, first_ms, first_billed, first_ends)
        _add_copy(held, timestamp_ms, billed, ends)
        return bills

    def bill(self) -> list[HeldBill]:
        """Each held inference's events, its time part of its ids (as for any record billed at its delivery's time):
        the output its first copy counted with the input, under the same ids as a response logged once."""
        held, self._held = self._held, {}
        bills = []
        for identity, inference in held.items():
            if type(inference) is tuple:
                subscription, model, first, counts, _ = inference
                bills.append(HeldBill(f"{identity}|at:{first}", subscription, model, first, counts))
                continue
            counts, rises, earlier = inference.counts, inference.rises, inference.earlier
            first = inference.timestamp_ms
            legacy = earlier is not None and earlier.output is None
            if legacy:
                # Kept by the release before, which billed the running count it saw under ids of its own: only a
                # copy that ends the answer bills, its whole output, as that release billed it.
                at = inference.ended_ms
                rises = [(at, 0, inference.output)] if at is not None and inference.output else []
            elif rises and rises[0][:2] == (first, 0):
                counts = {**counts, "output": rises[0][2]}
                rises = rises[1:]
            if counts:
                bills.append(HeldBill(f"{identity}|at:{first}", inference.subscription, inference.model, first, counts))
            for at, start, end in rises:
                name = f"{identity}|from:{start}|at:{at}" if start else f"{identity}|at:{at}"
                bills.append(HeldBill(name, inference.subscription, inference.model, at, {"output": end - start}))
            # An answer left unended is remembered; one an earlier delivery began, while its output grows.
            remember = bool(inference.rises) if earlier is not None else inference.ended_ms is None
            if inference.group is not None and remember and not legacy:
                self._remembered(inference.group)[identity] = Remembered(first, inference.output)
                self._changed.add(inference.group)
        return bills

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


def _add_copy(held: _Held, timestamp_ms: int, billed: dict[str, int], ends: bool) -> None:
    """A copy's counts into what is held of its answer: the largest input and cache counts, a rise of the output."""
    counts = held.counts
    output = 0
    for token_type, tokens in billed.items():
        if token_type == "output":
            output = tokens
        elif tokens > counts.get(token_type, 0):
            counts[token_type] = tokens
    if output > held.output:
        held.rises.append((timestamp_ms, held.output, output))
        held.output = output
    if ends and held.ended_ms is None:
        held.ended_ms = timestamp_ms


def _recent(kept: dict[str, Remembered]) -> dict[str, Remembered]:
    """The answers of the newest first copies, by log time (a backfill's times are old): those of the last day, at
    most a bound."""
    newest = max((answer.first_ms for answer in kept.values()), default=0)
    recent = sorted((item for item in kept.items() if item[1].first_ms >= newest - _REMEMBERED_MS),
                    key=lambda item: item[1].first_ms)
    return dict(recent[-_REMEMBERED_PER_GROUP:])
