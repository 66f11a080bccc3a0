"""The Meter: records in, events and dead letters out, every record accounted for."""

import json
import subprocess
import sys

import pytest
from conftest import Collect

from tokenmeter.core import ascii_json, parse_config, record_key
from tokenmeter.core.dead_letters import DeadLetter, fitted_json
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord, Skipped
from tokenmeter.metering.tokenizer_pool import TokenizerPool


def run(records, **config):
    config = parse_config({"subscription_from": ["requestMetadata.subscription_id", "user"], **config})
    sink = Collect()
    meter = Meter(config, TokenizerPool(config.tokenizers), sink)
    for record in records:
        meter.add(record)
    return meter.finish(), sink


def raw(record, identity="cwl:1", fallback_ms=1_732_646_400_000, **kw):
    text = record if isinstance(record, (str, bytes)) else json.dumps(record)
    return RawRecord(f"test:{identity}", identity, text, fallback_ms, **kw)


OPENAI = {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", "model": "gpt-4o", "created": 1732646401, "user": "sub_1",
          "usage": {"prompt_tokens": 30, "completion_tokens": 12}}


def test_one_event_per_non_zero_token_type_with_the_contract_fields():
    summary, sink = run([raw(OPENAI)])
    assert [e.as_dict() for e in sink.events] == [
        {"transaction_id": sink.events[0].transaction_id, "external_subscription_id": "sub_1", "code": "llm_tokens",
         "timestamp": "1732646401.000", "properties": {"tokens": 30, "model": "gpt-4o", "token_type": "input"}},
        {"transaction_id": sink.events[1].transaction_id, "external_subscription_id": "sub_1", "code": "llm_tokens",
         "timestamp": "1732646401.000", "properties": {"tokens": 12, "model": "gpt-4o", "token_type": "output"}},
    ]
    assert summary.as_dict() == {"records": 1, "metered": 1, "events": 2, "dead_letters": {}, "skipped": {}}


def test_ids_are_the_same_on_redelivery_and_differ_between_records():
    ollama = {"model": "llama3.1", "created_at": "2024-11-26T18:40:00Z", "done": True, "prompt_eval_count": 5,
              "eval_count": 7, "user": "sub_1"}
    _, first = run([raw(ollama, "cwl:1"), raw(ollama, "cwl:2")])
    _, again = run([raw(ollama, "cwl:1")])
    ids = [e.transaction_id for e in first.events]
    assert len(set(ids)) == 4  # two identical-looking records from two log events are two inferences
    assert [e.transaction_id for e in again.events] == ids[:2]
    assert ids[0] == record_key("cwl:1") + "-input"


def test_a_line_logging_an_array_of_records_meters_each_under_its_index():
    ollama = {"model": "llama3.1", "created_at": "2024-11-26T18:40:00Z", "done": True, "prompt_eval_count": 5,
              "eval_count": 7, "user": "sub_1"}
    summary, sink = run([raw([ollama, ollama], "cwl:1")])
    assert (summary.records, summary.metered, summary.events) == (2, 2, 4)
    # As the elements of an S3 object that is one JSON array: the line's identity and the element's index.
    assert [e.transaction_id for e in sink.events] == [record_key(f"cwl:1[{i}]") + f"-{kind}"
                                                       for i in (0, 1) for kind in ("input", "output")]


def test_same_provider_request_logged_twice_bills_once():
    bedrock = {"schemaType": "ModelInvocationLog", "timestamp": "2024-11-26T18:40:00Z", "modelId": "meta.llama3-1-8b-instruct-v1:0",
               "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "input": {"inputTokenCount": 10},
               "output": {"outputTokenCount": 3}, "requestMetadata": {"subscription_id": "sub_9"}}
    _, sink = run([raw(bedrock, "cwl:7"), raw(bedrock, "s3:logs/a.json.gz@etag#1")])
    ids = [e.transaction_id for e in sink.events]
    assert ids[:2] == ids[2:]


def test_short_request_ids_are_not_trusted_to_be_unique():
    # Ollama's OpenAI endpoint numbers completions below 1000: two requests can share an id.
    record = {**OPENAI, "id": "chatcmpl-123"}
    _, sink = run([raw(record, "cwl:1"), raw(record, "cwl:2")])
    assert len({e.transaction_id for e in sink.events}) == 4


def test_attribution_takes_the_first_non_empty_path_then_the_default():
    records = [
        raw({**OPENAI, "user": "sub_user", "requestMetadata": {"subscription_id": "sub_tag"}}, "a"),
        raw({**OPENAI, "user": "sub_user", "requestMetadata": {"subscription_id": "  "}}, "b"),
        raw({**OPENAI, "user": 42}, "c"),
        raw({k: v for k, v in OPENAI.items() if k != "user"}, "d"),
    ]
    summary, sink = run(records)
    assert [e.external_subscription_id for e in sink.events[::2]] == ["sub_tag", "sub_user", "42"]
    assert [d.reason for d in sink.dead_letters] == ["unattributed"]
    _, defaulted = run(records[3:], default_subscription="sub_house")
    assert {e.external_subscription_id for e in defaulted.events} == {"sub_house"}


def test_record_without_time_takes_its_log_events_and_without_either_is_dead_lettered():
    anthropic = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "model": "claude-3-5-haiku", "user": "sub_1",
                 "usage": {"input_tokens": 4, "output_tokens": 2, "cache_read_input_tokens": 0}}
    _, sink = run([raw(anthropic, fallback_ms=1_732_646_400_042)])
    assert {e.timestamp for e in sink.events} == {"1732646400.042"}
    # A response logged once, with its stop reason: every type under the ids its log event's time gives.
    ended = {**anthropic, "stop_reason": "end_turn"}
    _, sink = run([raw(ended, fallback_ms=1_732_646_400_042)])
    key = record_key("req:msg_01XFDUDYJgAACzvnptvVoYEL|claude-3-5-haiku|at:1732646400042")
    assert sorted(e.transaction_id for e in sink.events) == [f"{key}-input", f"{key}-output"]
    summary, sink = run([raw(anthropic, fallback_ms=None)])
    assert summary.dead_letters == {"invalid_timestamp": 1} and not sink.events


def test_metric_code_and_property_names_come_from_config():
    _, sink = run([raw(OPENAI)], metric_code="ai_usage", property_names={"tokens": "units", "token_type": "type"})
    assert sink.events[0].code == "ai_usage"
    assert sink.events[0].properties == {"units": 30, "model": "gpt-4o", "type": "input"}


def test_text_only_records_are_counted_with_the_configured_tokenizer(llama3_dir, tiktoken_llama3):
    records = [raw({"model": "llama3.2:3b", "prompt": f"Question {i}: why?", "completion": f"Because {i}.",
                    "user": "sub_t"}, f"cwl:{i}") for i in range(300)]
    summary, sink = run(records, tokenizers={"llama3*": llama3_dir})
    assert summary.metered == 300 and summary.events == 600
    by_id = {e.transaction_id: e.properties["tokens"] for e in sink.events}
    for i in (0, 257, 299):
        # No time of their own: the log event's time is part of the identity.
        key = record_key(f"cwl:{i}|at:1732646400000")
        assert by_id[key + "-input"] == 1 + len(tiktoken_llama3.encode(f"Question {i}: why?"))
        assert by_id[key + "-output"] == len(tiktoken_llama3.encode(f"Because {i}."))


def test_text_only_record_problems_are_dead_lettered_and_the_rest_go_on(llama3_dir, tmp_path):
    good = {"model": "llama3.2", "prompt": "Hello", "completion": "Hi", "user": "sub_1"}
    records = [
        raw({**good, "model": "mistral-7b"}, "a"),
        raw(json.dumps(good).encode().replace(b"Hello", b"Hel\xfflo").decode("utf-8", "replace"), "b", lossy=True),
        raw(good, "c"),
        raw({**good, "model": "broken-model"}, "d"),
    ]
    summary, sink = run(records, tokenizers={"llama3*": llama3_dir, "broken*": str(tmp_path)})
    assert summary.dead_letters == {"no_tokenizer": 1, "invalid_utf8": 1, "tokenizer_error": 1}
    assert summary.metered == 1 and len(sink.events) == 2
    assert "mistral-7b" in next(d.detail for d in sink.dead_letters if d.reason == "no_tokenizer")


def test_five_megabyte_prompt_is_counted_exactly(llama3_dir, tiktoken_llama3):
    paragraph = "The quick brown fox jumps over the lazy dog; 東京 — naïve café 42.\n"
    prompt = paragraph * (5_000_000 // len(paragraph.encode()))
    summary, sink = run([raw({"model": "llama3.2", "prompt": prompt, "completion": "ok", "user": "sub_big"}),
                         raw(OPENAI, "cwl:2")], tokenizers={"llama3*": llama3_dir})
    assert summary.metered == 2
    tokens = {e.properties["token_type"] + e.properties["model"]: e.properties["tokens"] for e in sink.events}
    assert tokens["inputllama3.2"] == 1 + len(tiktoken_llama3.encode(prompt))


def test_dead_letter_keeps_the_raw_record_truncated_past_the_limit():
    summary, sink = run([raw("{" + "x" * 100_000, "big")], dead_letter_record_max_bytes=1000)
    letter = sink.dead_letters[0]
    assert letter.reason == "malformed_json" and letter.source == "test:big"
    assert letter.record.startswith("{xxx") and letter.record.endswith("[truncated from 100001 bytes]")
    assert len(letter.record) < 1100


def test_a_letter_cut_to_fit_its_escapes_keeps_the_note_of_the_whole_record():
    # "é" is two bytes in UTF-8 and six ("\u00e9") in the ASCII JSON the outbox writes.
    letter = DeadLetter("malformed_json", "not JSON", "test:big", "é" * 10_000 + "... [truncated from 90000 bytes]")
    assert len(ascii_json(letter.as_dict())) > 60_000
    body = fitted_json(letter, 30_000)
    assert len(body) <= 30_000
    cut = json.loads(body)
    assert cut["record"].endswith("é... [truncated from 90000 bytes]")  # the note of the record as it came
    kept = len(cut["record"]) - len("... [truncated from 90000 bytes]")
    assert 30_000 // 6 - 50 < kept < 30_000 // 6 and cut["record"][:kept] == "é" * kept
    assert {k: cut[k] for k in ("reason", "detail", "source")} == {"reason": "malformed_json", "detail": "not JSON",
                                                                     "source": "test:big"}
    small = DeadLetter("malformed_json", "not JSON", "test:small", "é" * 100)
    assert fitted_json(small, 30_000) == ascii_json(small.as_dict())  # one that fits is left whole


def test_every_record_is_accounted_for():
    items = [raw(OPENAI, "a"), raw("nope", "b"), Skipped("platform_line", "s"),
             DeadLetter("decode_error", "bad gzip", "cloudwatch", ""),
             raw({"model": "m", "created_at": "2024-11-26T18:40:00Z", "done": False}, "c")]
    summary, _ = run(items)
    assert summary.records == 5
    assert summary.metered + sum(summary.dead_letters.values()) + sum(summary.skipped.values()) == 5


def test_records_with_counts_never_import_transformers():
    script = f"""
import sys, json
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.core import parse_config
config = parse_config({{"tokenizers": {{"*": "/nowhere"}}}})
class Sink:
    def add_usage(self, usage): pass
    def add_dead_letter(self, letter): raise AssertionError(letter)
meter = Meter(config, TokenizerPool(config.tokenizers), Sink())
meter.add(RawRecord("s", "i", json.dumps({json.dumps(OPENAI)}), 0))
meter.finish()
print("transformers" in sys.modules, "tokenizers" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("bad", [b"\xff\xfe{}", "{\"model\": ", "[]", "null", "12"])
def test_non_records_are_dead_lettered(bad):
    summary, sink = run([raw(bad if isinstance(bad, str) else bad.decode("latin-1"))])
    assert sum(summary.dead_letters.values()) == 1 and not sink.events


def test_a_unicode_digit_timestamp_is_a_dead_letter_not_a_crash():
    # str.isdigit() accepts "²", float() does not: found by the hypothesis CloudWatch test.
    summary, sink = run([raw({"model": "gpt-4o", "prompt": "hi", "completion": "yo", "timestamp": "²", "user": "s"}),
                         raw(OPENAI, "cwl:2")])
    assert summary.dead_letters == {"invalid_timestamp": 1} and summary.metered == 1
    assert "timestamp" in sink.dead_letters[0].detail


@pytest.mark.parametrize("trigger", ["cloudwatch", "records"])
def test_a_usage_queue_failing_part_way_fails_the_invocation_for_a_retry(trigger):
    """The outbox sends as it fills: a send that fails part-way lost what it carried, so the invocation must
    fail (Lambda retries it whole, with the same ids), not count the failure against the record at hand."""
    import base64
    import gzip

    from botocore.exceptions import ClientError

    from tokenmeter.metering.delivery import SqsOutbox
    from tokenmeter.metering.pipeline import meter_records, meter_trigger
    from tokenmeter.metering.records import Unavailable

    class DownSqs:
        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch")

    # 3,000 records of two events each: some 1.3 MB of events, many sends before the end of the invocation.
    lines = [json.dumps({**OPENAI, "id": f"chatcmpl-{i:026d}"}) for i in range(3000)]
    config = parse_config({"subscription_from": ["user"]})
    outbox = SqsOutbox(DownSqs(), "usage", "dead")
    with pytest.raises(Unavailable, match="ServiceUnavailable"):
        if trigger == "records":
            meter_records([raw(line, identity=f"cwl:{i}") for i, line in enumerate(lines)], config,
                          TokenizerPool({}), outbox)
        else:
            payload = {"logGroup": "g", "logStream": "s", "logEvents": [
                {"id": str(i), "timestamp": 1_732_646_400_000, "message": line} for i, line in enumerate(lines)]}
            data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
            meter_trigger({"awslogs": {"data": data}}, config, TokenizerPool({}), outbox, lambda: None)


def test_a_sink_of_the_earlier_protocol_still_gets_usage_events():
    """Sinks written for ``add_events(list[UsageEvent])`` (before InferenceUsage) keep receiving events."""
    class EventsSink:
        def __init__(self):
            self.events, self.dead_letters = [], []

        def add_events(self, events):
            self.events.extend(events)

        def add_dead_letter(self, letter):
            self.dead_letters.append(letter)

    config = parse_config({"subscription_from": ["user"]})
    sink = EventsSink()
    meter = Meter(config, TokenizerPool({}), sink)
    meter.add(raw(OPENAI))
    meter.add(raw("not json", identity="cwl:2"))
    meter.finish()
    assert [(e.properties["token_type"], e.properties["tokens"]) for e in sink.events] == [("input", 30), ("output", 12)]
    assert [letter.reason for letter in sink.dead_letters] == ["malformed_json"]


def test_an_inference_whose_events_pass_the_message_cap_is_sent_event_by_event():
    """Ids of 256 characters that JSON escapes to \\ud83d\\ude00 (12 bytes each) make one inference's nine
    events ~57 KB: no message may pass the 25,000 bytes the outbox keeps to."""
    from tokenmeter.core import TOKEN_TYPES
    from tokenmeter.metering.delivery import MAX_MESSAGE_BYTES, SqsOutbox
    from tokenmeter.metering.usage import InferenceUsage, event_shape

    class RecordingSqs:
        bodies: list = []

        def send_message_batch(self, QueueUrl, Entries):  # noqa: N803 - boto3's names
            self.bodies.extend(e["MessageBody"] for e in Entries)
            return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    sqs = RecordingSqs()
    outbox = SqsOutbox(sqs, "usage", "dead")
    shape = event_shape("llm_tokens", {"tokens": "tokens", "model": "model", "token_type": "token_type"})
    wide = InferenceUsage("0f" * 16, "\U0001F600" * 256, "1732646400.000", "\U0001F680" * 256,
                          {kind: i + 1 for i, kind in enumerate(TOKEN_TYPES)}, shape)
    small = InferenceUsage("1e" * 16, "sub_1", "1732646400.000", "gpt-4o", {"input": 5}, shape)
    for usage in (small, wide, small):
        outbox.add_usage(usage)
    outbox.flush()
    assert all(len(body) <= MAX_MESSAGE_BYTES and body.isascii() for body in sqs.bodies)
    sent = [event for body in sqs.bodies for event in json.loads(body)["events"]]
    assert sent == [e.as_dict() for usage in (small, wide, small) for e in usage.events()]
