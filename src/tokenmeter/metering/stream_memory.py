"""Anthropic message starts kept between invocations, so that a stream split across two log deliveries
still bills its output: its message_delta names no message and no model, only the start does. The models
of the last Realtime session of each log stream, which its turns do not name (realtime.py). And the Groq
streams begun but not ended, whose middle chunks, alone in a delivery, must wait for the usage chunk rather
than be counted as text (streams.py). And the first copy's time of each answer whose copies a log stream's
delivery held without its end (a Claude Code transcript's lines as it streams), whose ids carry that time, with
the largest output seen of it (held.py). And the model and the running sums billed of each log stream's Codex
session lines (codex_sessions.py).

One small S3 object per log stream (or object) under ``tokenmeter-streams/``, in the log bucket: the start
whose end was not in the last invocation; or a kept start a delta of the last invocation ended, with that
delta's identity (so a retried delivery pairs again, another delta not); or nothing. Beside it, the stream's
Realtime session models, if it logged a session; an empty object per Groq stream whose usage is to come; the
first copies' times of the answers it left unended (those of the last day), with the largest output seen of each; and
the Codex session's model and recent running sums.
Each is written, or removed, only after the invocation's events reached SQS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson
from aws_lambda_powertools import Logger

from tokenmeter.core import ascii_json

from .codex_sessions import CodexSession
from .held import Remembered
from .realtime import SessionModels
from .records import RawRecord, Unavailable
from .streams import OpenStart

PREFIX = "tokenmeter-streams/"
_START_KEYS = {"source", "identity", "fallback_ms", "data", "message_id", "model", "usage"}  # of a kept start
logger = Logger(child=True)


class S3StreamMemory:
    """Open message starts by log stream: read when a delta has no start, written after delivery."""

    def __init__(self, s3: Callable[[], Any], bucket: str):
        self._client, self._bucket = s3, bucket  # a factory: most invocations never need S3 for this
        self._pending: dict[str, OpenStart | None] = {}
        self._paired: dict[str, str] = {}
        self._sessions: dict[str, SessionModels] = {}
        self._usage: dict[tuple[str, str], bool] = {}
        self._answers: dict[str, dict[str, Remembered]] = {}
        self._codex: dict[str, CodexSession] = {}

    def take(self, group: str, delta: str) -> OpenStart | None:
        """The start kept for ``group`` that the delta record ``delta`` ends, or None: a start already ended by
        another delta does not pair again (a lost start's delta is not billed as the previous message's)."""
        kept = self._read(self._key(group))
        if kept is None or kept.get("paired_by") not in (None, delta) or not kept.keys() >= _START_KEYS:
            return None
        raw = RawRecord(kept["source"], kept["identity"], "", kept["fallback_ms"], kept["data"])
        return OpenStart(raw, kept["data"], kept["message_id"], kept["model"], kept["usage"], billed_input=True)

    def keep(self, group: str, start: OpenStart | None, paired_by: str | None = None) -> None:
        """What ``group`` holds after this invocation: its open start; the start a kept one's delta ended here
        (``paired_by``: so that a retried delivery pairs the same again); or nothing."""
        self._pending[group] = start
        if paired_by is not None:
            self._paired[group] = paired_by

    def session(self, group: str) -> SessionModels | None:
        """The models of the last Realtime session ``group`` logged, in an earlier invocation."""
        kept = self._read(self._key(group, ".session"))
        return SessionModels(kept.get("model"), kept.get("transcription")) if kept is not None else None

    def keep_session(self, group: str, models: SessionModels) -> None:
        self._sessions[group] = models

    def usage_to_come(self, group: str, stream_id: str) -> bool:
        """Whether a stream of ``group`` begun in an earlier invocation said its usage comes in its last chunk."""
        return self._read(self._key(f"{group}\n{stream_id}", ".usage")) is not None

    def keep_usage_to_come(self, group: str, stream_id: str, to_come: bool) -> None:
        self._usage[(group, stream_id)] = to_come

    def answers(self, group: str) -> dict[str, Remembered]:
        """What earlier invocations billed of the answers ``group`` left unended, by identity."""
        kept = self._read(self._key(group, ".held"))
        firsts = kept.get("firsts") if kept is not None else None
        if type(firsts) is not dict:
            return {}
        outputs = kept.get("outputs")
        outputs = outputs if type(outputs) is dict else {}  # (not noted before the output was billed in parts)
        return {identity: Remembered(at, output if type(output := outputs.get(identity)) is int else None)
                for identity, at in firsts.items() if type(at) is int}

    def keep_answers(self, group: str, answers: dict[str, Remembered]) -> None:
        self._answers[group] = answers

    def codex_session(self, group: str) -> CodexSession | None:
        """The model and the running sums billed of the Codex session lines ``group`` logged before."""
        kept = self._read(self._key(group, ".codex"))
        if kept is None:
            return None
        model, billed = kept.get("model"), kept.get("billed")
        return CodexSession(model if type(model) is str and model else None,
                            [item for item in billed if type(item) is str] if type(billed) is list else [])

    def keep_codex_session(self, group: str, session: CodexSession) -> None:
        self._codex[group] = session

    def save(self) -> None:
        """Called once the invocation's events are delivered."""
        s3 = self._client() if self._pending or self._sessions or self._usage or self._answers or self._codex else None
        for group, answers in self._answers.items():
            body = {"firsts": {identity: answer.first_ms for identity, answer in answers.items()},
                    "outputs": {identity: answer.output for identity, answer in answers.items()
                                if answer.output is not None}}
            s3.put_object(Bucket=self._bucket, Key=self._key(group, ".held"), Body=ascii_json(body),
                          ContentType="application/json")
        for group, session in self._codex.items():
            s3.put_object(Bucket=self._bucket, Key=self._key(group, ".codex"), ContentType="application/json",
                          Body=ascii_json({"model": session.model, "billed": session.billed}))
        for (group, stream_id), to_come in self._usage.items():
            key = self._key(f"{group}\n{stream_id}", ".usage")
            if to_come:
                s3.put_object(Bucket=self._bucket, Key=key, Body=b"{}", ContentType="application/json")
            else:
                s3.delete_object(Bucket=self._bucket, Key=key)
        for group, models in self._sessions.items():
            s3.put_object(Bucket=self._bucket, Key=self._key(group, ".session"), ContentType="application/json",
                          Body=ascii_json({"model": models.model, "transcription": models.transcription}))
        for group, start in self._pending.items():
            if start is None:
                s3.delete_object(Bucket=self._bucket, Key=self._key(group))
                continue
            body = {"source": start.raw.source, "identity": start.raw.identity, "fallback_ms": start.raw.fallback_ms,
                    "data": start.data, "message_id": start.message_id, "model": start.model, "usage": start.usage,
                    "paired_by": self._paired.get(group)}
            s3.put_object(Bucket=self._bucket, Key=self._key(group), Body=ascii_json(body),
                                ContentType="application/json")
        self._pending, self._paired, self._sessions, self._usage, self._answers, self._codex = {}, {}, {}, {}, {}, {}

    def _read(self, key: str) -> dict[str, Any] | None:
        s3 = self._client()
        try:
            body = s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # denied, throttled, unreachable: the record waits for a retry, not a dead letter
            raise Unavailable(f"stream memory {key} unreadable: {type(exc).__name__}: {exc}") from None
        try:
            kept = orjson.loads(body)
        except orjson.JSONDecodeError:
            kept = None
        if type(kept) is not dict:  # (not written by count_tokens: read as nothing kept)
            logger.warning("stream memory object is not what count_tokens writes; read as empty", extra={"key": key})
            return None
        return kept

    @staticmethod
    def _key(group: str, kind: str = "") -> str:
        return f"{PREFIX}{hashlib.sha256(group.encode()).hexdigest()[:40]}{kind}.json"
