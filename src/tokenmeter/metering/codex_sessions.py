"""Codex CLI's session files: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<session id>.jsonl`, as a sync to S3 or a
log agent tailing them delivers them. Each line is `{"timestamp", "type", "payload"}`, its type `session_meta`,
`turn_context`, `response_item`, `event_msg` or `compacted` (codex-rs `RolloutLine`; later releases add a few,
and resume a session by appending to its file).

The usage is in its `token_count` events (`event_msg` whose payload's type is `token_count`): `info.last_token_usage`
is the last response's, counted as the Responses API counts (`input_tokens` holds its cached part
`cached_input_tokens`, `output_tokens` its reasoning part `reasoning_output_tokens`), and `info.total_token_usage` the
session's running sum of them. The model is that of the last `turn_context` before it (`payload.model`).

Codex sends a token_count again, its `info` unchanged, each time the rate limits change (codex-rs
`update_rate_limits`: at the start of the next request), and one whose last usage is zeros when it estimates a
compaction. So a token_count bills only if its running sum is new to its log stream (or S3 object): the sums billed
of its recent lines, and its model, are kept in the stream memory for its lines in later deliveries. The running sum
identifies the response, and its line's time is its time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .fields import NothingToBill, carve, count_at, object_at, rfc3339_at, short, with_counts
from .records import INVALID_RECORD, NO_USAGE, Inference, RecordError

REPEATED_COUNT = "repeated_count"  # a token_count Codex sent again, its usage unchanged: the first one billed it
# codex-rs `RolloutItem`'s tags (later releases add the last three).
_LINE_TYPES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted", "world_state",
                         "inter_agent_communication", "inter_agent_communication_metadata"})
_SUM_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
# Sums kept per log stream: Codex repeats a token_count at its next request, so the last few are enough.
_KEPT_SUMS = 256


def is_rollout_line(data: dict[str, Any]) -> bool:
    return data.get("type") in _LINE_TYPES and type(data.get("payload")) is dict and type(data.get("timestamp")) is str


@dataclass(slots=True)
class CodexSession:
    """What a log stream of Codex session lines said so far: its model, and the running sums billed (oldest first)."""

    model: str | None = None
    billed: list[str] = field(default_factory=list)


class CodexSessionMemory(Protocol):
    """Codex sessions by log stream, kept between invocations (stream_memory.py)."""

    def codex_session(self, group: str) -> CodexSession | None: ...

    def keep_codex_session(self, group: str, session: CodexSession) -> None: ...


class CodexSessions:
    """The Codex sessions of one invocation's log streams and objects."""

    def __init__(self, memory: CodexSessionMemory | None = None):
        self._memory = memory
        self._sessions: dict[str, CodexSession] = {}

    def add(self, data: dict[str, Any], group: str) -> Inference:
        """The inference of a session line that bills; NothingToBill for the others (a turn's model is noted)."""
        payload = data["payload"]
        if data["type"] == "turn_context":
            model = payload.get("model")
            if type(model) is str and model:
                session = self._session(group)
                if session.model != model:
                    session.model = model
                    self._keep(group, session)
            raise NothingToBill(NO_USAGE)
        if data["type"] != "event_msg" or payload.get("type") != "token_count" or not object_at(payload, "info"):
            raise NothingToBill(NO_USAGE)
        info = payload["info"]
        counts = _counts(object_at(info, "last_token_usage"))
        total = object_at(info, "total_token_usage")
        if not total:  # (codex-rs always writes it: without it, no sum tells a repeat from the next response)
            raise RecordError(INVALID_RECORD, "a Codex token_count without info.total_token_usage")
        running = "/".join(str(count_at(total, name, f"info.total_token_usage.{name}")) for name in _SUM_FIELDS)
        session = self._session(group)
        if running in session.billed:  # (a few hundred at most)
            raise NothingToBill(REPEATED_COUNT)
        if session.model is None:
            raise RecordError(INVALID_RECORD, "a Codex token_count with no turn_context before it in its log stream or "
                                              "object to name the model: deliver the session file whole")
        inference = with_counts(session.model, f"codex:{group}:{running}", rfc3339_at(data, "timestamp"), counts)
        session.billed.append(running)
        del session.billed[:-_KEPT_SUMS]
        self._keep(group, session)
        return inference

    def _session(self, group: str) -> CodexSession:
        session = self._sessions.get(group)
        if session is None:
            kept = self._memory.codex_session(group) if self._memory is not None else None
            session = self._sessions[group] = kept or CodexSession()
        return session

    def _keep(self, group: str, session: CodexSession) -> None:
        if self._memory is not None:
            self._memory.keep_codex_session(group, session)


def _counts(usage: dict[str, Any]) -> dict[str, int]:
    if "input_tokens" not in usage and "output_tokens" not in usage:
        raise RecordError(INVALID_RECORD, f"info.last_token_usage has no token counts: {short(usage)}")
    name = "info.last_token_usage"
    return {**carve("input", count_at(usage, "input_tokens", f"{name}.input_tokens"),
                    {"cached_input": count_at(usage, "cached_input_tokens", f"{name}.cached_input_tokens")}),
            **carve("output", count_at(usage, "output_tokens", f"{name}.output_tokens"),
                    {"reasoning": count_at(usage, "reasoning_output_tokens", f"{name}.reasoning_output_tokens")})}
