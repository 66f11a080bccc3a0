"""Records logged as Python prints a dict (`logging.info(response.model_dump())`), not as JSON: read as the
same record would be as JSON, and anything else in Python's syntax (code, sets, huge or deep literals) is a
malformed_json dead letter like any other line that is not JSON."""

import pytest
from conftest import Collect

from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import log_line

RESPONSE = {"id": "chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS", "object": "chat.completion", "created": 1732646400,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": None, "user": "sub_acme",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "It's done", "refusal": None}}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                      "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0}}}
OLLAMA = {"model": "llama3.2", "created_at": "2024-11-26T18:41:00Z", "done": True, "done_reason": "stop",
          "context": None, "prompt_eval_count": 26, "eval_count": 290, "metadata": {"customer": "sub_globex"}}


def meter(*records: RawRecord):
    config = parse_config({})
    sink = Collect()
    meter = Meter(config, TokenizerPool({}), sink)
    for record in records:
        meter.add(record)
    return meter.finish(), sink


def billed(sink) -> list[tuple[str, str, int]]:
    return sorted((e.external_subscription_id, e.properties["token_type"], e.properties["tokens"]) for e in sink.events)


def test_a_lambda_log_line_with_a_python_dict_bills_as_its_json_would():
    prefix = "[INFO]\t2024-11-26T18:40:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tresponse: "
    summary, sink = meter(log_line("cloudwatch:g:s:1", "cwl:1", prefix + str(RESPONSE) + "\n", 1_732_646_500_000))
    # 1,200 prompt tokens of which 1,024 cached; 300 completion tokens of which 100 reasoning.
    assert billed(sink) == [("sub_acme", "cached_input", 1024), ("sub_acme", "input", 176),
                            ("sub_acme", "output", 200), ("sub_acme", "reasoning", 100)]
    assert summary.dead_letters == {}


def test_an_s3_line_with_a_python_dict_and_its_true_and_none():
    line = str(OLLAMA).encode()
    summary, sink = meter(RawRecord("s3://logs/app.log#line=1", "s3:logs/app.log@e#1", line, 1_732_646_500_000))
    assert billed(sink) == [("sub_globex", "input", 26), ("sub_globex", "output", 290)]


@pytest.mark.parametrize("text", [
    "{'a': " + "(" * 100_000 + "}",  # deeper than the parser goes
    "{'model': __import__('os').getcwd()}",  # code: never run
    "{'model': 'gpt-4o', 'usage': {'prompt_tokens': 10}, 'pad': '" + "x" * (64 << 10) + "'}",  # past the size read
    "{'usage': {'prompt_tokens': 10, 'completion_tokens': 2},",  # cut short
])
def test_python_that_is_no_record_is_a_malformed_json_dead_letter(text):
    summary, sink = meter(RawRecord("s3://logs/app.log#line=1", "s3:logs/app.log@e#1", text, 1_732_646_500_000))
    assert sink.events == [] and [d.reason for d in sink.dead_letters] == ["malformed_json"]


def test_a_python_dict_of_other_than_json_types_is_a_dead_letter_not_a_crash():
    text = "{'model': 'gpt-4o', 'user': 'sub_acme', 'usage': {'prompt_tokens': {1, 2}, 'completion_tokens': b'2'}}"
    summary, sink = meter(RawRecord("s3://logs/app.log#line=1", "s3:logs/app.log@e#1", text, 1_732_646_500_000))
    assert sink.events == [] and [d.reason for d in sink.dead_letters] == ["invalid_counts"]
