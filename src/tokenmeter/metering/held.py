"""Copies of one answer logged apart, billed once: an inference with a request id and no time of its own, logged
several times at its log times (a Claude Agent SDK step's message per content block, Claude Code's transcript
lines as the answer streams), is held until its delivery is read and billed then as one.

Its input and cache counts, the same on every copy, bill at the first copy's time. Its output grows from copy to
copy: where the copy that ends the answer (its stop reason) was read, the output bills from it at its time, so a
transcript synced again once the answer ended bills the whole output, whatever an earlier sync billed of it.

A transcript's lines can straddle two deliveries (a log agent's batches). The answer's ids carry its first copy's
time, which the later delivery does not hold: the first copy's time of each answer a delivery left unended is kept
in the stream memory by log stream, so that the later delivery bills the input and cache under the same ids and
times (copies, dropped downstream), and the output from the copy that ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Inferences held to the end of a delivery: past this many, those held are billed.
HELD_KEPT = 10_000
# First copies kept per log stream: an answer streams for minutes, a delivery is retried for hours.
_REMEMBERED_MS = 24 * 3600 * 1000
_REMEMBERED_PER_GROUP = 1000


class FirstCopyMemory(Protocol):
    """The first copies' times of answers, by log stream, kept between invocations (stream_memory.py)."""

    def first_copies(self, group: str) -> dict[str, int]: ...

    def keep_first_copies(self, group: str, firsts: dict[str, int]) -> None: ...


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
    remembered: bool  # its first copy came in an earlier delivery, which billed it
    final_ms: int | None = None  # the time of the copy that ends the answer, where one was read


class HeldAnswers:
    """The held inferences of one invocation; ``finish`` once at its end."""

    def __init__(self, memory: FirstCopyMemory | None = None):
        self._held: dict[str, _Held] = {}
        self._memory = memory
        self._firsts: dict[str, dict[str, int]] = {}  # by log stream: the first copies' times known
        self._changed: set[str] = set()

    def hold(self, identity: str, subscription: str, model: str, timestamp_ms: int, billed: dict[str, int],
             ends: bool, group: str | None = None) -> list[HeldBill]:
        """Keep a copy: the first copy's subscription and time, the largest count of each type, the time of the
        copy that ends it (``ends``). ``group``: the log stream of a source whose answers can straddle deliveries.
        Returns what had to be billed to make room (nothing, but past HELD_KEPT)."""
        held = self._held.get(identity)
        if held is not None:
            counts = held.counts
            for token_type, tokens in billed.items():
                if tokens > counts.get(token_type, 0):
                    counts[token_type] = tokens
            if ends and held.final_ms is None:
                held.final_ms = timestamp_ms
            return []
        bills = self.bill() if len(self._held) >= HELD_KEPT else []
        first = self._first_copies(group).get(identity) if group is not None else None
        self._held[identity] = _Held(subscription, model, timestamp_ms if first is None else first, billed, group,
                                     first is not None, timestamp_ms if ends else None)
        return bills

    def bill(self) -> list[HeldBill]:
        """Each held inference's events, its time part of its ids (as for any record billed at its delivery's time).
        An answer whose first copy an earlier delivery billed bills its output only from the copy that ends it:
        the running count was that delivery's."""
        held, self._held = self._held, {}
        bills = []
        for identity, inference in held.items():
            counts = inference.counts
            if inference.final_ms is not None and "output" in counts:
                counts = dict(counts)
                bills.append(HeldBill(f"{identity}|at:{inference.final_ms}", inference.subscription, inference.model,
                                      inference.final_ms, {"output": counts.pop("output")}))
            elif inference.remembered:
                counts = {token_type: tokens for token_type, tokens in counts.items() if token_type != "output"}
            elif inference.group is not None and inference.final_ms is None:
                self._first_copies(inference.group)[identity] = inference.timestamp_ms
                self._changed.add(inference.group)
            if counts:
                bills.append(HeldBill(f"{identity}|at:{inference.timestamp_ms}", inference.subscription,
                                      inference.model, inference.timestamp_ms, counts))
        return bills

    def finish(self) -> list[HeldBill]:
        """What is still held, and the first copies of answers left unended, given to the memory to keep."""
        bills = self.bill()
        if self._memory is not None:
            for group in sorted(self._changed):
                self._memory.keep_first_copies(group, _recent(self._firsts[group]))
        self._firsts, self._changed = {}, set()
        return bills

    def _first_copies(self, group: str) -> dict[str, int]:
        firsts = self._firsts.get(group)
        if firsts is None:
            firsts = self._firsts[group] = self._memory.first_copies(group) if self._memory is not None else {}
        return firsts


def _recent(firsts: dict[str, int]) -> dict[str, int]:
    """The newest first copies, by log time (a backfill's times are old): those of the last day, at most a bound."""
    newest = max(firsts.values(), default=0)
    kept = sorted((item for item in firsts.items() if item[1] >= newest - _REMEMBERED_MS), key=lambda item: item[1])
    return dict(kept[-_REMEMBERED_PER_GROUP:])
