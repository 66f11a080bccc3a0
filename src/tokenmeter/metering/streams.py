"""Streamed responses logged chunk by chunk, put back together into inferences.

OpenAI `chat.completion.chunk`s: with `stream_options.include_usage` every chunk carries `"usage": null`
and one last chunk the usage of the whole stream, which alone is billed (Groq's last chunk carries it in
`x_groq.usage`, and its first chunk an `x_groq` without it). Without it no chunk has a `usage`
key: the streamed text is gathered per response id and counted with the tokenizer once the stream ends,
or at the end of the invocation for a stream split across two deliveries, each part billed once under
the identity of its own first chunk. Some servers (Mistral, Together) put the usage in the last chunk with no
`usage` key before it: once a stream of a model ends that way in a log stream, a part of that model's next
stream there waits for its usage instead (remembered in the stream memory for the parts that come alone).

OpenAI Responses API events: the last (`response.completed`, `.incomplete` or `.failed`) carries the
response and its usage; the events before it are parts. The Realtime API's events are read in realtime.py:
`response.done` is a whole turn, billed with its session's model.

Anthropic events: `message_start` carries the message id, model and input usage; `message_delta` the
output usage (cumulative, so the last one counts) and no id; each delta belongs to the last message
started in the same log stream or object. Input is billed when the output is, or at the end of the
invocation if the stream's end is not in it; the output of a message whose start came in an earlier
invocation is billed from the start kept in the stream memory (stream_memory.py) under the same identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .codex_sessions import CodexSessionMemory
from .fields import model_at, short, unix_seconds_at
from .formats import anthropic_counts
from .held import AnswerMemory
from .openai_usage import openai_counts
from .realtime import REALTIME_DONE, RealtimeSessions, SessionMemory, is_realtime_event
from .records import INVALID_RECORD, Inference, RawRecord, RecordError

STREAM_UNPAIRED = "stream_unpaired"
_ANTHROPIC_EVENTS = {"message_start", "message_delta", "message_stop", "content_block_start", "content_block_delta",
                     "content_block_stop", "ping"}
_RESPONSE_ENDS = {"response.completed", "response.incomplete", "response.failed"}
# The audio endpoints' streamed parts (their `.done` events carry the usage, and are read as responses).
_AUDIO_PARTS = {"transcript.text.delta", "transcript.text.segment", "speech.audio.delta"}
# Where the stream memory marks a model whose streams end with their usage, beside the marks of single streams.
_MODEL_MARK = "@model:"


def is_stream_event(data: dict[str, Any]) -> bool:
    kind = data.get("type")
    return (data.get("object") == "chat.completion.chunk"
            or (isinstance(kind, str) and (kind in _ANTHROPIC_EVENTS or kind.startswith("response.")
                                           or kind in _AUDIO_PARTS))
            or ("event_id" in data and is_realtime_event(data)))


@dataclass(slots=True)
class Bill:
    """An inference put together from chunks: the record it is billed as, and what attribution reads."""

    raw: RawRecord
    data: Any
    inference: Inference
    by_current: bool = True  # completed by the chunk just read (else by a later one, or the invocation's end)


@dataclass(slots=True)
class OpenStart:
    """A message_start waiting for its message_delta."""

    raw: RawRecord
    data: Any
    message_id: str
    model: str
    usage: dict[str, Any]
    billed_input: bool = False


@dataclass(slots=True)
class _Text:
    raw: RawRecord  # the first chunk seen of this stream: its identity is the part's
    data: Any
    model: str
    created_ms: int | None
    complete: bool  # the first chunk (the one with the role) was seen
    texts: dict[int, list[str]] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)


class StreamMemory(SessionMemory, AnswerMemory, CodexSessionMemory, Protocol):
    """Message starts, Realtime sessions, the streams that bill from a usage chunk still to come, what was billed
    of answers logged apart (held.py) and Codex sessions (codex_sessions.py), kept between invocations
    (stream_memory.py)."""

    def take(self, group: str, delta: str) -> OpenStart | None: ...

    def keep(self, group: str, start: OpenStart | None, paired_by: str | None = None) -> None: ...

    def usage_to_come(self, group: str, stream_id: str) -> bool: ...

    def keep_usage_to_come(self, group: str, stream_id: str, to_come: bool) -> None: ...


class Streams:
    """The streams of one invocation; ``group`` is the log stream or object a record came from."""

    def __init__(self, memory: StreamMemory | None = None):
        self._texts: dict[tuple[str, str], _Text] = {}
        self._with_usage: set[tuple[str, str]] = set()  # streams seen to carry their usage (Groq's)
        self._usage_came: set[tuple[str, str]] = set()  # ... whose usage chunk this invocation read
        # (log stream, model) whose streams were seen to end in a chunk with the usage and no sign before it
        # (Mistral's, Together's): a part of such a stream waits for its usage rather than being counted.
        self._ends_with_usage: set[tuple[str, str]] = set()
        self._marks: dict[tuple[str, str], bool] = {}  # the memory's answer for a (log stream, model), read once
        self._starts: dict[str, OpenStart] = {}
        self._touched: set[str] = set()  # log streams with Anthropic events in this invocation
        self._remembered: dict[str, tuple[OpenStart, str]] = {}  # kept starts ended here, and by which delta
        self.memory = memory  # (the meter's held answers keep theirs in it too)
        self._realtime = RealtimeSessions(memory)

    def add(self, raw: RawRecord, data: dict[str, Any], group: str) -> list[Bill]:
        """What this chunk completes: nothing for a chunk only kept (an exception would cost each chunk more than
        its reading)."""
        if data.get("object") == "chat.completion.chunk":
            return self._openai(raw, data, group)
        kind = data["type"]
        if kind.startswith("response."):
            return self._responses_event(raw, data, group)
        if "event_id" in data and is_realtime_event(data):
            return [Bill(raw, data, self._realtime.add(data, group))]
        if kind in ("message_start", "message_delta"):
            self._touched.add(group)
        if kind == "message_start":
            return self._start(raw, data, group)
        if kind == "message_delta":
            return self._delta(raw, data, group)
        return []

    def finish(self) -> list[Bill]:
        """Streams whose end was not in this invocation: what they hold so far."""
        bills = [self._text_bill(text, by_current=False) for key, text in self._texts.items()
                 if not self._usage_comes(key, text)]
        self._remember_usage_to_come()
        for group in sorted(self._touched):
            start = self._starts.get(group)
            if start is not None:
                bills.append(self._input_bill(start, by_current=False))
            if self.memory is None:
                continue
            if start is None and group in self._remembered:
                self.memory.keep(group, *self._remembered[group])
            else:
                self.memory.keep(group, start)
        self._texts, self._starts, self._touched, self._remembered = {}, {}, set(), {}
        self._with_usage, self._usage_came, self._ends_with_usage, self._marks = set(), set(), set(), {}
        return bills

    def _openai(self, raw: RawRecord, data: dict[str, Any], group: str) -> list[Bill]:
        usage = data.get("usage")
        key = (group, _id(data) or "")
        groq = data.get("x_groq")
        if usage is None and isinstance(groq, dict):
            # Groq's streams carry their usage in the last chunk's x_groq, with or without include_usage; the
            # first chunk's x_groq holds only the request id, and tells that the usage will come.
            usage = groq.get("usage")
            if usage is None:
                self._with_usage.add(key)
                return []
        if isinstance(usage, dict):
            if _goes_on(data):
                return []  # the usage so far (vLLM's continuous_usage_stats): the stream's last count bills it
            inference = Inference(model_at(data, "model"), _id(data), unix_seconds_at(data, "created"),
                                  openai_counts(usage))
            if self._texts.pop(key, None) is not None or _finishes(data):  # no usage: null before it
                self._ends_with_usage.add((group, inference.model))
            if isinstance(groq, dict):
                self._usage_came.add(key)
            return [Bill(raw, data, inference)]
        if "usage" in data or key in self._with_usage:
            return []  # the usage chunk bills the stream (include_usage was set, or it is Groq's)
        parts = _choices(data)  # read whole before anything is kept: a bad chunk is a dead letter, not half kept
        model = model_at(data, "model")
        created_ms = unix_seconds_at(data, "created")
        text = self._texts.get(key)
        if text is None:
            first = any(role for _, _, _, role in parts)
            text = self._texts[key] = _Text(raw, data, model, created_ms, first)
        for index, content, finished, _ in parts:
            pieces = text.texts.setdefault(index, [])
            if content:
                pieces.append(content)
            if finished:
                text.finished.add(index)
        if text.texts and text.finished >= text.texts.keys():
            del self._texts[key]
            return [self._text_bill(text)]
        return []

    def _usage_comes(self, key: tuple[str, str], text: _Text) -> bool:
        """Whether a stream's text is in a usage chunk still to come: a Groq stream whose first chunk, in an earlier
        invocation, said so (its middle chunks alone here, as a long stream's are between two deliveries); or a
        stream of a model whose streams in the same log stream end with their usage (seen here, or remembered)."""
        group, model_mark = key[0], _MODEL_MARK + text.model
        if (group, text.model) in self._ends_with_usage:
            if self.memory is not None:  # for the stream's next part, which may come alone
                self.memory.keep_usage_to_come(group, model_mark, True)
            return True
        if self.memory is None:
            return False
        if not text.complete and self.memory.usage_to_come(*key):
            return True
        if (group, text.model) not in self._marks:  # (several streams of a model may be split at once)
            self._marks[(group, text.model)] = self.memory.usage_to_come(group, model_mark)
        return self._marks[(group, text.model)]

    def _remember_usage_to_come(self) -> None:
        if self.memory is None:
            return
        for group, stream_id in self._with_usage - self._usage_came:
            self.memory.keep_usage_to_come(group, stream_id, True)
        for group, stream_id in self._usage_came - self._with_usage:  # begun in an earlier invocation
            self.memory.keep_usage_to_come(group, stream_id, False)

    def _responses_event(self, raw: RawRecord, data: dict[str, Any], group: str) -> list[Bill]:
        """OpenAI Responses API stream events: the final one (completed, incomplete or failed) carries the
        whole response with its usage; every other event is part of it."""
        if data["type"] == REALTIME_DONE:  # the Realtime API's turn, not a Responses stream's part
            return [Bill(raw, data, self._realtime.add(data, group))]
        response = data.get("response")
        if data["type"] not in _RESPONSE_ENDS or not isinstance(response, dict) or response.get("usage") is None:
            return []
        usage = response["usage"]
        if not isinstance(usage, dict):
            raise RecordError(INVALID_RECORD, f"response.usage must be an object, got {short(usage)}")
        inference = Inference(model_at(response, "model"), _id(response), unix_seconds_at(response, "created_at"),
                              openai_counts(usage))
        return [Bill(raw, data, inference)]

    def _text_bill(self, text: _Text, by_current: bool = True) -> Bill:
        completion = "".join("".join(parts) for _, parts in sorted(text.texts.items()))
        # A whole stream is the response its id names; a part is only what its first chunk's record holds.
        request_id = _id(text.data) if text.complete and text.finished >= text.texts.keys() else None
        return Bill(text.raw, text.data, Inference(text.model, request_id, text.created_ms, completion=completion), by_current)

    def _start(self, raw: RawRecord, data: dict[str, Any], group: str) -> list[Bill]:
        message = data.get("message")
        if not isinstance(message, dict):
            raise RecordError(INVALID_RECORD, f"message_start's 'message' must be an object, got {short(message)}")
        usage = message.get("usage")
        message_id = _id(message)
        if message_id is None:
            raise RecordError(INVALID_RECORD, "message_start without a message id")
        previous = self._starts.get(group)
        self._starts[group] = OpenStart(raw, data, message_id, model_at(message, "model"),
                                        usage if isinstance(usage, dict) else {})
        if previous is not None:  # its delta never came: its input is billed all the same
            return [self._input_bill(previous, by_current=False)]
        return []

    def _delta(self, raw: RawRecord, data: dict[str, Any], group: str) -> list[Bill]:
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise RecordError(INVALID_RECORD, f"message_delta's 'usage' must be an object, got {short(usage)}")
        start = self._starts.get(group)
        remembered = False
        if start is None and self.memory is not None:
            start, remembered = self.memory.take(group, raw.identity), True
        if start is None:
            raise RecordError(STREAM_UNPAIRED, "a message_delta whose message_start is in no log record read: "
                                               "its model and message id are unknown")
        if start.billed_input:
            counts = {"output": anthropic_counts(usage)["output"]}
        else:
            # Cumulative: a delta that repeats the input counts has the final ones (server tools add to them).
            merged = {**start.usage, **{k: v for k, v in usage.items() if k != "output_tokens" and v is not None},
                      "output_tokens": usage.get("output_tokens")}
            counts = anthropic_counts(merged)
        # Only now is the start ended: a bad delta leaves it open, and its input is billed all the same.
        if remembered:
            self._remembered[group] = (start, raw.identity)
        else:
            del self._starts[group]
        return [Bill(start.raw, start.data, Inference(start.model, start.message_id, None, counts))]

    def _input_bill(self, start: OpenStart, by_current: bool) -> Bill:
        counts = {**anthropic_counts(start.usage), "output": 0}
        start.billed_input = True
        return Bill(start.raw, start.data, Inference(start.model, start.message_id, None, counts), by_current)


def _choices(data: dict[str, Any]) -> list[tuple[int, str, bool, bool]]:
    """(index, text, finished, has the role) of each choice of an OpenAI chunk."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise RecordError(INVALID_RECORD, f"'choices' must be a list, got {short(choices)}")
    parts = []
    for choice in choices:
        if not isinstance(choice, dict):
            raise RecordError(INVALID_RECORD, f"a choice must be an object, got {short(choice)}")
        index = choice.get("index", 0)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        content = delta.get("content")
        parts.append((index if type(index) is int else 0, content if isinstance(content, str) else "",
                      bool(choice.get("finish_reason")), "role" in delta))
    return parts


def _finishes(data: dict[str, Any]) -> bool:
    """A chunk that ends a choice (Mistral's last chunk carries the usage with its finish_reason)."""
    choices = data.get("choices")
    return isinstance(choices, list) and any(isinstance(choice, dict) and choice.get("finish_reason")
                                             for choice in choices)


def _goes_on(data: dict[str, Any]) -> bool:
    """A chunk that streams more of a choice (text, a tool call) and finishes none: any usage it carries is the
    stream's so far. (A usage chunk after the last text has no choices, a finish_reason, or an empty delta.)"""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or _finishes(data):
        return False
    return any(isinstance(choice, dict) and isinstance(choice.get("delta"), dict)
               and any(value for key, value in choice["delta"].items() if key != "role") for choice in choices)


def _id(holder: dict[str, Any]) -> str | None:
    value = holder.get("id")
    return value if isinstance(value, str) and value else None
