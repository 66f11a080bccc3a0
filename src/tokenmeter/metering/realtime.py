"""OpenAI Realtime API server events, as an app that logs them writes them: the turns and transcriptions bill.

`response.done` is the one event of a spoken or typed turn that carries its usage: `usage.input_tokens` holds
text, audio and image tokens, `input_token_details.cached_tokens` the part of them read from the cache (split
again in `cached_tokens_details`); `output_tokens` holds text and audio. A finished input transcription
(`conversation.item.input_audio_transcription.completed`) carries the transcription model's usage, audio in.

Neither names its model: the session does, in `session.created` and `session.updated` (`session.model`, and the
transcription model under `session.audio.input.transcription`, or the beta's `session.input_audio_transcription`).
So the model is the event's own (`response.model`, or `model` an app logs beside), else that of the last session
started or updated in the same log stream or object, kept between invocations in the stream memory
(stream_memory.py) where there is one. Every other server event (they all carry an `event_id`) bills nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .fields import NothingToBill, carve, count_at, id_at, model_at, object_at, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, NO_USAGE, Inference, RecordError

REALTIME_DONE = "response.done"
TRANSCRIPTION_DONE = "conversation.item.input_audio_transcription.completed"
REALTIME_EVENT = "realtime_event"
_SESSION_EVENTS = ("session.created", "session.updated")
_EVENT_PREFIXES = ("session.", "conversation.", "input_audio_buffer.", "output_audio_buffer.", "rate_limits.",
                   "transcription_session.")


def is_realtime_event(data: dict[str, Any]) -> bool:
    """A Realtime server event other than a response's (`response.*` are read with the Responses API's events)."""
    kind = data.get("type")
    return type(kind) is str and "event_id" in data and (kind.startswith(_EVENT_PREFIXES) or kind == "error")


@dataclass(frozen=True, slots=True)
class SessionModels:
    """What a Realtime session's own events do not name: its model, and its input transcription's."""

    model: str | None = None
    transcription: str | None = None


class SessionMemory(Protocol):
    """Session models kept between invocations, by log stream (stream_memory.py)."""

    def session(self, group: str) -> SessionModels | None: ...

    def keep_session(self, group: str, models: SessionModels) -> None: ...


class RealtimeSessions:
    """The Realtime sessions of one invocation's log streams: the models their turns and transcriptions bill."""

    def __init__(self, memory: SessionMemory | None = None):
        self._memory = memory
        self._sessions: dict[str, SessionModels] = {}

    def add(self, data: dict[str, Any], group: str) -> Inference:
        """The inference of a Realtime event that bills; NothingToBill for the others (a session's is noted)."""
        kind = data["type"]
        # The session is looked up (in S3, the first time for a log stream) only for an event that needs it.
        if kind == REALTIME_DONE:
            return read_realtime_done(data, lambda: self._models(group))
        if kind == TRANSCRIPTION_DONE:
            return _transcription(data, lambda: self._models(group))
        if kind in _SESSION_EVENTS:
            session = object_at(data, "session")
            models = SessionModels(_name(session.get("model")), _transcription_model(session))
            self._sessions[group] = models
            if self._memory is not None:
                self._memory.keep_session(group, models)
        raise NothingToBill(REALTIME_EVENT)

    def _models(self, group: str) -> SessionModels:
        models = self._sessions.get(group)
        if models is None:
            kept = self._memory.session(group) if self._memory is not None else None
            models = self._sessions[group] = kept or SessionModels()
        return models


def read_realtime_done(data: dict[str, Any], session: Callable[[], SessionModels] = SessionModels) -> Inference:
    """The inference of a `response.done` event; NothingToBill for one without usage (a turn cancelled before
    it began). ``session`` gives the models of its log stream's session, for a turn that names none."""
    response = object_at(data, "response")
    usage = object_at(response, "usage")
    if not usage:
        raise NothingToBill(NO_USAGE)
    holder = response if "model" in response else data if "model" in data else None
    session_model = session().model if holder is None else None
    if holder is None and session_model is None:
        raise RecordError(INVALID_RECORD, "a Realtime response.done names no model, and no session.created or "
                                          "session.updated before it in its log stream did: log the session's "
                                          "model with it, as response.model or the event's model")
    model = model_at(holder, "model") if holder is not None else session_model
    return with_counts(model, id_at(response, "id"), None, _counts(usage))  # type: ignore[arg-type]


def _transcription(data: dict[str, Any], session: Callable[[], SessionModels]) -> Inference:
    usage = object_at(data, "usage")
    if not usage or usage.get("type") == "duration":
        raise NothingToBill(NO_USAGE)  # whisper-1 bills by the second, not by the token
    model = session().transcription
    if model is None:
        raise RecordError(INVALID_RECORD, "a Realtime input transcription whose session's transcription model is "
                                          "in no session.created or session.updated before it in its log stream")
    item = id_at(data, "item_id")
    request_id = f"{item}/{data.get('content_index', 0)}" if item is not None else None
    return with_counts(model, request_id, None, _counts(usage))


def _counts(usage: dict[str, Any]) -> dict[str, int]:
    inputs = object_at(usage, "input_token_details")
    cached = object_at(inputs, "cached_tokens_details")
    return {
        **carve("input", count_at(usage, "input_tokens", "usage.input_tokens"), {
            "cached_input": count_at(inputs, "cached_tokens", "input_token_details.cached_tokens"),
            "input_audio": _uncached(inputs, cached, "audio_tokens"),
            "input_image": _uncached(inputs, cached, "image_tokens"),
        }),
        **carve("output", count_at(usage, "output_tokens", "usage.output_tokens"), {
            "output_audio": count_at(object_at(usage, "output_token_details"), "audio_tokens",
                                     "output_token_details.audio_tokens"),
        }),
    }


def _uncached(inputs: dict[str, Any], cached: dict[str, Any], key: str) -> int:
    """A modality's input tokens not read from the cache (those are in cached_input)."""
    total = count_at(inputs, key, f"input_token_details.{key}")
    from_cache = count_at(cached, key, f"input_token_details.cached_tokens_details.{key}")
    if from_cache > total:
        raise RecordError(INVALID_COUNTS, f"cached_tokens_details.{key} {from_cache} exceeds input_token_details."
                                          f"{key} {total}")
    return total - from_cache


def _transcription_model(session: dict[str, Any]) -> str | None:
    audio = session.get("audio")
    inputs = audio.get("input") if isinstance(audio, dict) else None
    found = inputs.get("transcription") if isinstance(inputs, dict) else session.get("input_audio_transcription")
    return _name(found.get("model")) if isinstance(found, dict) else None


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
