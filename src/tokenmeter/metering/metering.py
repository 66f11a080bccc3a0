"""From raw records to usage events: parse, attribute, count, and dead-letter the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from tokenmeter.core import (
    MeteringConfig,
    ascii_json,
    decode_json,
    format_timestamp,
    record_key,
)
from tokenmeter.core.dead_letters import DeadLetter, truncate_record
from tokenmeter.core.identifiers import VALID_IDENTIFIERS, repeated_identifier_problem

from .ai_sdk import ai_sdk_steps, read_ai_sdk
from .attribution import Attributor
from .braintrust_spans import api_events, braintrust_span, read_braintrust
from .claude_agent import agent_step, logged_at
from .cli_events import ApiRequest, api_requests, is_otlp_logs, read_api_request
from .codex_sessions import CodexSessions, is_rollout_line
from .fields import NothingToBill
from .formats import read_inference
from .gemini_chats import chat_messages, is_chat_record, read_chat_record
from .held import HeldAnswers, HeldBill
from .langfuse_exports import api_page, api_trace, is_export_bookkeeping, is_observation, read_observation
from .langsmith_runs import api_runs, langsmith_run, read_run
from .log_wrappers import llama_index_raw, logged_record, printed_record
from .origins import log_origin, record_origin
from .otlp import NO_SPANS, NOT_TRACES, Span, is_otlp, otlp_spans, read_span, skip_reasons, span_document
from .records import (
    INVALID_IDENTIFIER,
    INVALID_RECORD,
    INVALID_TIMESTAMP,
    INVALID_UTF8,
    MALFORMED_JSON,
    NO_TOKENIZER,
    NO_USAGE,
    STREAM_CHUNK,
    TOKENIZER_ERROR,
    UNATTRIBUTED,
    UNKNOWN_FORMAT,
    DeadLetterBudget,
    Inference,
    RawRecord,
    RecordError,
    Skipped,
    Summary,
    Unavailable,
)
from .sagemaker import capture_record, is_capture
from .streams import Bill, Streams, is_stream_event
from .tokenizer_pool import TokenizerPool, TokenizerUnavailable
from .triggers import LogLines
from .usage import InferenceUsage, event_shape
from .usual import read_usual

logger = Logger(child=True)

# Text-only records wait for a batch this big before they are encoded together.
_BATCH_RECORDS = 256
_BATCH_CHARS = 4_000_000
# What apps and libraries write around a record, each told by one of its keys: the record inside is read as if
# logged bare (the same ids), the wrapper's other keys beneath its own for attribution. A JSON log line (Lambda's JSON
# format, Powertools), LlamaIndex's response around the provider's answer, a Claude Agent SDK step's message.
_WRAPPERS = ((("message",), logged_record), (("raw",), llama_index_raw), (("type", "message_id"), agent_step))
# Request ids this short are not unique enough to stand for the inference
# (Ollama's OpenAI endpoint answers "chatcmpl-" and a number below 1000).
_MIN_REQUEST_ID = 16
# A part's place in its record, as its identity ends (a dead letter holds the part alone in such a record).
_PART = re.compile(r"#(?:log|step)=\d+$")


class Sink(Protocol):
    """Where metering delivers: usage events (an inference's at a time) and dead letters."""

    def add_usage(self, usage: InferenceUsage) -> None: ...

    def add_dead_letter(self, letter: DeadLetter) -> None: ...


class _EventsSink:
    """A sink written for the earlier protocol, ``add_events(list[UsageEvent])``, kept working."""

    def __init__(self, sink: Any):
        self._sink = sink
        self.add_dead_letter = sink.add_dead_letter

    def add_usage(self, usage: InferenceUsage) -> None:
        self._sink.add_events(usage.events())


@dataclass(slots=True)
class _Pending:
    raw: RawRecord
    inference: Inference
    subscription: str
    timestamp_ms: int


class Meter:
    """Turns records into events as they arrive; call ``finish`` once at the end."""

    def __init__(self, config: MeteringConfig, tokenizers: TokenizerPool, sink: Sink,
                 budget: DeadLetterBudget | None = None, streams: Streams | None = None):
        self._config = config
        self._streams = streams or Streams()
        self._budget = budget or DeadLetterBudget(0)
        self._tokenizers = tokenizers
        self._sink = sink if hasattr(sink, "add_usage") or not hasattr(sink, "add_events") else _EventsSink(sink)
        self._attributor = Attributor(config.subscription_from, config.default_subscription)
        self._by_origin = config.attributes_by_origin
        self._model_names = config.model_names
        self._shape = event_shape(config.metric_code, config.property_names)
        self._pending: dict[str, list[_Pending]] = {}
        self._pending_count = 0
        self._pending_chars = 0
        self.summary = Summary()
        self._held = HeldAnswers(self._streams.memory)
        self._codex = CodexSessions(self._streams.memory)

    def add(self, item: RawRecord | DeadLetter | Skipped | LogLines) -> None:
        if type(item) is LogLines:
            self._add_lines(item)
            return
        self.summary.records += 1
        if isinstance(item, Skipped):
            self.summary.skipped[item.reason] += 1
        elif isinstance(item, DeadLetter):
            # A trigger's own letter (an SQS message, a payload that does not decode) holds whatever came: cut as a
            # record's is, or one huge message would fail the delivery of every letter and event with it.
            limit = self._config.dead_letter_record_max_bytes
            record = truncate_record(item.record, limit)
            self._dead_letter(item if record is item.record else replace(item, record=record))
        else:
            self._guarded(item, self._meter, item)

    def _add_lines(self, lines: LogLines) -> None:
        """A CloudWatch batch: each usual line billed in one step, any other read as a record of its own."""
        summary = self.summary
        origin = log_origin(lines.group, lines.stream) if self._by_origin else None
        for position, value, identity, fallback_ms in lines.parsed():
            if type(value) is dict and identity is not None and self._bill_usual(value, identity, fallback_ms, origin):
                summary.records += 1
                continue
            item = lines.item(position, value)
            if type(value) is dict and type(item) is RawRecord:  # read, and not usual: straight to the general reading
                summary.records += 1
                self._guarded(item, self._read, item, value)
            else:
                self.add(item)

    def _bill_usual(self, data: dict[str, Any], identity: str, fallback_ms: int | None,
                    origin: dict[str, Any] | None = None, group: str | None = None) -> bool:
        """Bill a usual record (usual.py) in one step; False, having done nothing, for any other record or one
        whose subscription or model cannot travel: the general reading (``_read``) then gives its outcome. Whatever
        the one-step path raises, the record goes to the general reading too, on either trigger's path."""
        try:
            found = read_usual(data)
            if found is None:
                return False
            model, request_id, timestamp_ms, counts = found
            subscription = self._attributor.subscription_for(data, origin)
            if (subscription not in VALID_IDENTIFIERS or model not in VALID_IDENTIFIERS) and (
                    subscription is None or _identifier_error(subscription, model) is not None):
                return False
            if timestamp_ms is not None:
                self._emit(identity, request_id, model, subscription, timestamp_ms, True, counts)
            elif fallback_ms is not None:
                self._emit(identity, request_id, model, subscription, fallback_ms, False, counts, _ends(data), group)
            else:
                return False
        except (MemoryError, Unavailable):  # (a sink that failed raises Unavailable: the invocation fails)
            raise
        except Exception:  # noqa: BLE001 - nothing was delivered: the general reading gives the outcome
            return False
        return True

    def _guarded(self, raw: RawRecord, step: Any, *args: Any) -> None:
        """``step(*args)`` for one record: whatever it raises, the record has exactly one outcome."""
        try:
            step(*args)
        except NothingToBill as nothing:
            self.summary.skipped[nothing.reason] += 1
        except RecordError as error:
            self._dead_letter(self.dead_letter(raw, error.reason, error.detail))
        except (MemoryError, Unavailable):
            raise  # the environment or its state is in trouble, not the record: fail, and let Lambda retry
        except Exception as exc:  # whatever one record does, the others are metered
            logger.warning("record failed unexpectedly", extra={"source": raw.source, "error": type(exc).__name__})
            self._dead_letter(self.dead_letter(raw, INVALID_RECORD, f"{type(exc).__name__}: {_clip(str(exc))}"))

    def finish(self) -> Summary:
        for bill in self._streams.finish():
            self._settle(bill)
        self._count_pending()
        self._deliver_held(self._held.finish())
        return self.summary

    def dead_letter(self, raw: RawRecord, reason: str, detail: str) -> DeadLetter:
        """A dead letter carrying the raw record, truncated past the configured size."""
        text = raw.text if isinstance(raw.text, str) else raw.text.decode("utf-8", "replace")
        if not text and raw.parsed:
            # A span's record is the span: its letter holds it alone in an export (made here, for the few that fail).
            value = raw.value.alone() if type(raw.value) is Span else raw.value
            try:
                text = ascii_json(value).decode()  # falls back where orjson refuses (ints past 64 bits)
            except (RecursionError, ValueError, TypeError) as exc:  # nested past what any encoder takes
                text = f"<a JSON {type(value).__name__} that cannot be written back: {type(exc).__name__}>"
        self._budget.note(raw.origin)
        return DeadLetter(reason, detail, raw.source, truncate_record(text, self._config.dead_letter_record_max_bytes),
                          raw.identity, raw.fallback_ms)

    def _origin(self, raw: RawRecord) -> dict[str, Any] | None:
        """Where ``raw`` was logged, for rules that read it (None: no rule does)."""
        return record_origin(raw) if self._by_origin else None

    def _meter(self, raw: RawRecord) -> None:
        data = raw.value if raw.parsed else _decode(raw)  # (CloudWatch and S3 lines come parsed)
        if type(data) is dict and self._bill_usual(data, raw.identity, raw.fallback_ms, self._origin(raw)):
            return
        self._read(raw, data)

    def _read(self, raw: RawRecord, data: Any) -> None:
        """The general reading of a parsed record: spans, streamed chunks and every format."""
        group: str | None = None
        if type(data) is list and data and all(type(item) is dict for item in data) and any(map(_readable, data)):
            self._meter_items(raw, data)
            return
        if type(data) is dict:
            for keys, unwrap in _WRAPPERS:
                if not data.keys().isdisjoint(keys) and (inner := unwrap(data)) is not None:
                    if unwrap is agent_step:
                        # An answer's copies, written as it streams, can straddle deliveries of its log stream.
                        group = _group(raw)
                        if (at := logged_at(data)) is not None:
                            raw = replace(raw, fallback_ms=at)
                    if self._bill_usual(inner, raw.identity, raw.fallback_ms, self._origin(raw), group):
                        return
                    data = inner
            if "payload" in data and is_rollout_line(data):
                self._bill(raw, data, self._codex.add(data, _group(raw)))
                return
            if ("content" in data or "sessionId" in data or len(data) == 1) and is_chat_record(data):
                if (messages := chat_messages(data)) is not None:
                    self._meter_items(raw, messages)
                    return
                self._bill(raw, data, read_chat_record(data))
                return
            if "run_type" in data and (run := langsmith_run(data)) is not None:
                self._bill(raw, run, read_run(run))
                return
            if "span_attributes" in data and (logged := braintrust_span(data)) is not None:
                self._bill(raw, logged, read_braintrust(logged))
                return
            if ("trace_id" in data or "traceId" in data) and is_observation(data):
                self._bill(raw, data, read_observation(data))
                return
            if ("project_id" in data or "projectId" in data) and is_export_bookkeeping(data):
                raise NothingToBill(NO_USAGE)
            if ("meta" in data and (observations := api_page(data)) is not None) or (
                    "observations" in data and (observations := api_trace(data)) is not None):
                self._meter_items(raw, observations)
                return
            if ("runs" in data and (page := api_runs(data)) is not None) or (
                    "events" in data and (page := api_events(data)) is not None):
                self._meter_items(raw, page)
                return
            if "captureData" in data and is_capture(data):
                data = capture_record(data, record_origin(raw).get("@key"))  # SageMaker's: read as a gateway's log
            if "resourceSpans" in data and is_otlp(data):
                self._meter_spans(raw, data)
                return
            if "traceId" in data and (document := span_document(data)) is not None:
                self._meter_spans(raw, document)
                return
            if "resourceLogs" in data and is_otlp_logs(data):
                self._meter_api_requests(raw, data)
                return
            if ("object" in data or "type" in data) and is_stream_event(data):
                self._meter_chunk(raw, data)
                return
            if "steps" in data and (steps := ai_sdk_steps(data)) is not None:
                self._meter_steps(raw, data, steps)
                return
        self._bill(raw, data, read_inference(data, self._config.bill_proxy_cache_hits), group)

    def _deliver_held(self, bills: list[HeldBill]) -> None:
        for bill in bills:
            self._deliver(bill.identity, bill.subscription, bill.model, bill.timestamp_ms, bill.counts)

    def _meter_items(self, raw: RawRecord, items: list[dict[str, Any]]) -> None:
        """A line that logs an array of objects (an app's list of messages or records) of which a reader knows one:
        each a record of its own, named and identified by its index as the elements of an S3 object that is one
        JSON array are."""
        self.summary.records += len(items) - 1
        for index, item in enumerate(items):
            record = _part(raw, f"[{index}]", item)
            self._guarded(record, self._meter, record)

    def _meter_steps(self, raw: RawRecord, data: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        """The Vercel AI SDK's steps of one result: each an inference with its own response id, attributed by what
        the app logged around them."""
        self.summary.records += len(steps) - 1
        for index, step in enumerate(steps):
            # (Its dead letter: the result with this step alone, for what the app logged around it.)
            record = _part(raw, _part_suffix(raw, "step", index, len(steps)), {**data, "steps": [step]})
            self._guarded(record, self._bill_step, record, data, step)

    def _bill_step(self, record: RawRecord, data: dict[str, Any], step: dict[str, Any]) -> None:
        self._bill(record, data, read_ai_sdk(step))

    def _meter_spans(self, raw: RawRecord, document: dict[str, Any]) -> None:
        """Each span of an OTLP document is a record of its own: one outcome per span, not per document."""
        found = list(otlp_spans(document))
        if not found:
            raise NothingToBill(NO_SPANS)
        self.summary.records += len(found) - 1
        reasons = iter(skip_reasons([span for span in found if type(span) is Span]))
        skipped = self.summary.skipped
        for number, span in enumerate(found):
            if type(span) is not Span:
                body, error = span
                record = _part(raw, f"#span={number}", body)
                self._dead_letter(self.dead_letter(record, error.reason, error.detail))
                continue
            reason = next(reasons)
            if reason is not None:
                skipped[reason] += 1
                continue
            record = RawRecord(f"{raw.source}#span={span.trace_id}/{span.span_id}",
                               f"otel:{span.trace_id}/{span.span_id}", "", raw.fallback_ms, span, raw.lossy,
                               raw.origin)
            self._guarded(record, self._bill_span, record, span)

    def _bill_span(self, record: RawRecord, span: Span) -> None:
        self._bill(record, span.view(), read_span(span))

    def _meter_api_requests(self, raw: RawRecord, document: dict[str, Any]) -> None:
        """Claude Code's OTLP logs: each API request a record of its own; the export's other records bill nothing."""
        found = list(api_requests(document))
        if all(event is None for event in found):
            raise NothingToBill(NOT_TRACES)
        self.summary.records += len(found) - 1
        for number, event in enumerate(found):
            suffix = _part_suffix(raw, "log", number, len(found))
            if event is None:
                self.summary.skipped[NOT_TRACES] += 1
            elif type(event) is tuple:
                body, error = event
                self._dead_letter(self.dead_letter(_part(raw, suffix, body), error.reason, error.detail))
            else:
                record = _part(raw, suffix, event.body)
                self._guarded(record, self._bill_api_request, record, event)

    def _bill_api_request(self, record: RawRecord, event: ApiRequest) -> None:
        self._bill(record, event.view(), read_api_request(event))

    def _meter_chunk(self, raw: RawRecord, data: dict[str, Any]) -> None:
        """A streamed chunk: kept until its stream is complete (a stream_chunk), or what it completes."""
        bills = self._streams.add(raw, data, _group(raw))
        for bill in bills:
            if not bill.by_current:
                self._settle(bill)
        mine = [bill for bill in bills if bill.by_current]
        if not mine:
            self.summary.skipped[STREAM_CHUNK] += 1
        for bill in mine:
            self._bill(bill.raw, bill.data, bill.inference)

    def _settle(self, bill: Bill) -> None:
        """A stream billed after its first chunk was counted as kept: that chunk's outcome is the bill's."""
        self.summary.skipped[STREAM_CHUNK] -= 1
        self._guarded(bill.raw, self._bill, bill.raw, bill.data, bill.inference)

    def _bill(self, raw: RawRecord, data: Any, inference: Inference, group: str | None = None) -> None:
        """Bill ``inference``, read from ``raw``; ``group``: its log stream, for an answer whose copies can straddle
        deliveries (held.py)."""
        subscription = self._attributor.subscription_for(data, self._origin(raw))
        if subscription is None:
            raise RecordError(UNATTRIBUTED, "no subscription in " + ", ".join(map(str, self._config.subscription_from)))
        if subscription not in VALID_IDENTIFIERS or inference.model not in VALID_IDENTIFIERS:
            error = _identifier_error(subscription, inference.model)
            if error is not None:
                raise error
        timestamp_ms = inference.timestamp_ms if inference.timestamp_ms is not None else raw.fallback_ms
        if timestamp_ms is None:
            raise RecordError(INVALID_TIMESTAMP, "no timestamp in the record or its log event")
        if inference.counts is not None:
            self._emit(raw.identity, inference.request_id, inference.model, subscription, timestamp_ms,
                       inference.timestamp_ms is not None, _billed(inference.counts), _ends(data), group)
            return
        if raw.lossy:
            raise RecordError(INVALID_UTF8, "text-only record with invalid UTF-8: its tokens cannot be counted exactly")
        folder = self._tokenizers.folder_for(inference.model)
        if folder is None:
            raise RecordError(NO_TOKENIZER, f"no tokenizer configured for model {inference.model!r}")
        self._pending.setdefault(folder, []).append(_Pending(raw, inference, subscription, timestamp_ms))
        self._pending_count += 1
        self._pending_chars += _text_size(inference)
        if self._pending_count >= _BATCH_RECORDS or self._pending_chars >= _BATCH_CHARS:
            self._count_pending()

    def _emit(self, identity: str, request_id: str | None, model: str, subscription: str, timestamp_ms: int,
              own_time: bool, billed: dict[str, int], ends: bool = False, group: str | None = None) -> None:
        """Deliver an inference's events, one per token type in ``billed`` (no zero counts there). ``identity`` is
        its record's, used where the inference has no request id long enough to stand for it; ``own_time``: the
        time is the record's, not its delivery's."""
        if not billed:
            self.summary.skipped[NO_USAGE] += 1
            return
        if request_id is not None and len(request_id) >= _MIN_REQUEST_ID:
            # The same inference logged twice (Bedrock to CloudWatch and S3) bills once.
            identity = f"req:{request_id}|{model}"
            if not own_time:
                # Copies logged apart within one delivery, each at its own log time, are one inference, billed at
                # the end: a Claude Agent SDK step's message per content block, milliseconds apart, whose output
                # grows from copy to copy as Claude Code writes its transcript while the answer streams.
                self._deliver_held(self._held.hold(identity, subscription, model, timestamp_ms, billed, ends, group))
                self.summary.metered += 1
                return
        elif not own_time:
            # A record without a time of its own takes its delivery's (log event, object), which can differ
            # between copies that share an identity; Lago's ClickHouse store counts one transaction id sent
            # with two timestamps twice, so the time is part of the identity.
            identity += f"|at:{timestamp_ms}"
        self._deliver(identity, subscription, model, timestamp_ms, billed)
        self.summary.metered += 1

    def _deliver(self, identity: str, subscription: str, model: str, timestamp_ms: int, billed: dict[str, int]) -> None:
        if self._model_names:  # (after the ids are made: they stay the same whatever the config names)
            model = self._model_names.get(model, model)
        usage = InferenceUsage(record_key(identity), subscription, format_timestamp(timestamp_ms), model, billed,
                               self._shape)
        try:
            self._sink.add_usage(usage)
        except Exception as exc:
            # The sink sends as it fills (SqsOutbox): a failure there lost what was being sent, whichever record
            # was being billed, so the invocation fails and is retried whole rather than this record set aside.
            raise Unavailable(f"usage events not delivered: {type(exc).__name__}: {exc}") from exc
        self.summary.events += len(billed)

    def _count_pending(self) -> None:
        pending, self._pending = self._pending, {}
        self._pending_count = self._pending_chars = 0
        for folder, items in pending.items():
            try:
                tokenizer = self._tokenizers.tokenizer(folder)
                counts = _count_batch(tokenizer, items)
            except TokenizerUnavailable as exc:
                logger.error("tokenizer unavailable", extra={"folder": folder, "error": str(exc)})
                for item in items:
                    self._dead_letter(self.dead_letter(item.raw, TOKENIZER_ERROR, str(exc)))
                continue
            except Exception:  # one bad text must not cost the batch: retry one by one
                counts = [_count_one(tokenizer, item) for item in items]
            for item, count in zip(items, counts):
                if isinstance(count, str):
                    self._dead_letter(self.dead_letter(item.raw, TOKENIZER_ERROR, count))
                else:
                    self._emit(item.raw.identity, item.inference.request_id, item.inference.model, item.subscription,
                               item.timestamp_ms, item.inference.timestamp_ms is not None, _billed(count))

    def _dead_letter(self, letter: DeadLetter) -> None:
        self._sink.add_dead_letter(letter)
        self.summary.dead_letters[letter.reason] += 1


def _billed(counts: dict[str, int]) -> dict[str, int]:
    """The token types that bill: an event per count that is not zero."""
    return {token_type: tokens for token_type, tokens in counts.items() if tokens}


def _identifier_error(subscription: str, model: str) -> RecordError | None:
    """Why the subscription or model cannot travel to Lago (None: both can); valid ones are remembered."""
    for name, value in (("subscription", subscription), ("model", model)):
        problem = repeated_identifier_problem(value)
        if problem is not None:
            return RecordError(INVALID_IDENTIFIER, f"{name}: {problem}")
    return None


def _ends(data: Any) -> bool:
    """A copy that ends its answer: an Anthropic message with its stop reason (the copies written while it
    streams have none)."""
    return type(data) is dict and data.get("stop_reason") is not None


def _part_suffix(raw: RawRecord, kind: str, number: int, parts: int) -> str:
    """What names part ``number`` of ``raw`` (``#kind=number``). A part's dead letter holds it alone in a record
    named by its place: read again (a replay), that record's one part is the part itself, under the same ids."""
    return "" if parts == 1 and _PART.search(raw.identity) is not None else f"#{kind}={number}"


def _group(raw: RawRecord) -> str:
    """The log stream or S3 object ``raw`` came from."""
    return raw.origin or raw.source.rpartition(":")[0]


def _part(raw: RawRecord, suffix: str, value: Any) -> RawRecord:
    """A part of ``raw`` read as a record of its own (an array's element, a result's step, a span), named and
    identified by ``suffix`` after the whole's name and identity."""
    return RawRecord(f"{raw.source}{suffix}", f"{raw.identity}{suffix}", "", raw.fallback_ms, value, raw.lossy,
                     raw.origin)


def _readable(item: dict[str, Any]) -> bool:
    """Whether a format reader knows ``item``: an array of objects none of which is known stays one record, one
    dead letter, not one per element."""
    try:
        read_inference(item)
    except RecordError as error:
        return error.reason != UNKNOWN_FORMAT
    except Exception:  # noqa: BLE001 - NothingToBill, or a reader's failure: either way it recognised the record
        return True
    return True


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _decode(raw: RawRecord) -> Any:
    text = raw.text[raw.json_at:] if raw.json_at else raw.text
    try:
        return decode_json(text)
    except ValueError as exc:
        value = printed_record(raw.text, raw.json_at)  # as Python or Node print it, not as JSON
        if value is None:
            if isinstance(text, str) and "{" not in text and "(" not in text:
                raise RecordError(MALFORMED_JSON, "no JSON object in the log line") from None
            raise RecordError(MALFORMED_JSON, f"not JSON: {exc}") from None
        return value


def _text_size(inference: Inference) -> int:
    size = len(inference.prompt or "") + len(inference.completion or "")
    return size + sum(len(m["content"]) for m in inference.messages or ())


def _count_batch(tokenizer: Any, items: list[_Pending]) -> list[dict[str, int]]:
    # A stream's chunks carry no prompt: its input is not in the log, and counts as nothing.
    prompts = [i for i, item in enumerate(items) if item.inference.messages is None and item.inference.prompt is not None]
    chats = [i for i, item in enumerate(items) if item.inference.messages is not None]
    inputs = [0] * len(items)
    for i, n in zip(prompts, tokenizer.count_prompts([items[i].inference.prompt for i in prompts])):
        inputs[i] = n
    for i, n in zip(chats, tokenizer.count_chats([items[i].inference.messages for i in chats])):
        inputs[i] = n
    outputs = tokenizer.count_completions([item.inference.completion or "" for item in items])
    return [{"input": n_in, "output": n_out} for n_in, n_out in zip(inputs, outputs)]


def _count_one(tokenizer: Any, item: _Pending) -> dict[str, int] | str:
    try:
        return _count_batch(tokenizer, [item])[0]
    except Exception as exc:  # reported as the record's dead-letter detail
        return f"tokenizer failed on this record: {type(exc).__name__}: {exc}"
