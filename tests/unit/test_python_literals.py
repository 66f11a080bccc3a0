"""Records logged as Python prints them, not as JSON: a dict (`logging.info(response.model_dump())`) or an SDK's
response object (`print(response)`), read as the same record would be as JSON; anything else in Python's syntax
(code, positional arguments, huge or deep literals) is a malformed_json dead letter like any other line that is
not JSON."""

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


def meter(*records: RawRecord, **settings):
    config = parse_config(settings)
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


# What print(response) writes for the OpenAI and Anthropic SDKs' response objects (pydantic's repr).
CHAT_COMPLETION = (
    "ChatCompletion(id='chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS', choices=[Choice(finish_reason='stop', index=0, "
    "logprobs=None, message=ChatCompletionMessage(content='Hello {name}!', refusal=None, role='assistant', "
    "annotations=[], audio=None, function_call=None, tool_calls=None))], created=1732646400, "
    "model='gpt-4o-mini-2024-07-18', object='chat.completion', service_tier='default', system_fingerprint='fp_0ba0', "
    "usage=CompletionUsage(completion_tokens=300, prompt_tokens=1200, total_tokens=1500, "
    "completion_tokens_details=CompletionTokensDetails(accepted_prediction_tokens=0, audio_tokens=0, "
    "reasoning_tokens=100, rejected_prediction_tokens=0), prompt_tokens_details=PromptTokensDetails(audio_tokens=0, "
    "cached_tokens=1024)))")
ANTHROPIC_MESSAGE = (
    "Message(id='msg_01XFDUDYJgAACzvnptvVoYEL', content=[TextBlock(citations=None, text='Hi', type='text')], "
    "model='claude-sonnet-4-20250514', role='assistant', stop_reason='end_turn', stop_sequence=None, type='message', "
    "usage=Usage(cache_creation_input_tokens=500, cache_read_input_tokens=1000, input_tokens=10, output_tokens=20, "
    "server_tool_use=None, service_tier='standard'))")


def test_an_sdk_response_object_printed_in_a_log_line_bills_as_its_json_would():
    prefix = "2024-11-26T18:40:00.000Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\tresponse: "
    summary, sink = meter(log_line("cloudwatch:g:s:1", "cwl:1", prefix + CHAT_COMPLETION + "\n", 1_732_646_500_000),
                          log_line("cloudwatch:g:s:2", "cwl:2", "[INFO] " + ANTHROPIC_MESSAGE, 1_732_646_500_000),
                          default_subscription="sub_acme")
    assert summary.metered == 2 and summary.dead_letters == {}
    by_model = {}
    for event in sink.events:
        by_model.setdefault(event.properties["model"], {})[event.properties["token_type"]] = event.properties["tokens"]
    # OpenAI: 1,200 prompt (1,024 cached), 300 completion (100 reasoning). Anthropic: input excludes the cache.
    assert by_model == {"gpt-4o-mini-2024-07-18": {"input": 176, "cached_input": 1024, "output": 200, "reasoning": 100},
                        "claude-sonnet-4-20250514": {"input": 10, "cached_input": 1000, "cache_write": 500, "output": 20}}


@pytest.mark.parametrize(("text", "detail"), [
    ("Popen(['rm', '-rf', '/'])", "not JSON"),  # a positional argument: no object of fields
    ("Usage(input_tokens=os.getpid())", "not JSON"),  # an attribute's call
    ("Usage(**{'input_tokens': 3})", "not JSON"),
    ("Usage(a=" + "Usage(a=" * 80 + "1" + ")" * 81, "not JSON"),  # deeper than read
    ("processing the batch took 3 s", "no JSON object in the log line"),
])
def test_python_that_is_no_sdk_object_is_a_malformed_json_dead_letter(text, detail):
    summary, sink = meter(log_line("cloudwatch:g:s:1", "cwl:1", text, 1_732_646_500_000))
    assert sink.events == [] and [d.reason for d in sink.dead_letters] == ["malformed_json"]
    assert detail in sink.dead_letters[0].detail and sink.dead_letters[0].record == text


def test_a_printed_google_genai_response_with_enum_members_bills_as_gemini():
    printed = ("GenerateContentResponse(sdk_http_response=HttpResponse(headers={'content-type': 'application/json'}), "
               "candidates=[Candidate(content=Content(parts=[Part(text='Hi there')], role='model'), "
               "finish_reason=<FinishReason.STOP: 'STOP'>, index=0)], create_time=None, "
               "response_id='mAitaLmkHPPlz7IPvtfUqQ4', model_version='gemini-2.5-flash', "
               "usage_metadata=GenerateContentResponseUsageMetadata(candidates_token_count=12, prompt_token_count=8, "
               "prompt_tokens_details=[ModalityTokenCount(modality=<MediaModality.TEXT: 'TEXT'>, token_count=8)], "
               "thoughts_token_count=30, total_token_count=50), automatic_function_calling_history=[], parsed=None)")
    summary, sink = meter(log_line("cloudwatch:g:s:1", "cwl:1", "response: " + printed, 1732646400000),
                          default_subscription="sub_gemini")
    assert sink.dead_letters == [] and summary.metered == 1
    assert billed(sink) == [("sub_gemini", "input", 8), ("sub_gemini", "output", 12), ("sub_gemini", "reasoning", 30)]
