"""LangChain's records of a model call, as an app built on LangChain logs them: a chat model's AIMessage (dumped
plainly or with dumpd) and the LLMResult a callback's on_llm_end receives. Splits worked out by hand from
LangChain's UsageMetadata semantics: cache reads and writes inside input_tokens, reasoning inside output_tokens."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import read_inference
from tokenmeter.metering.records import RecordError

# ChatOpenAI(model="gpt-4o-mini").invoke(...).model_dump(): 1,200 prompt tokens (1,024 from the cache), 300
# completion tokens (100 of them reasoning).
OPENAI_MESSAGE = {
    "content": "Hello!", "additional_kwargs": {"refusal": None}, "type": "ai", "name": None,
    "id": "run--7d5f3f8c-8e0a-4d2a-9a8d-3c1b2e4f5a6b-0", "example": False, "tool_calls": [], "invalid_tool_calls": [],
    "response_metadata": {"token_usage": {"completion_tokens": 300, "prompt_tokens": 1200, "total_tokens": 1500,
                                          "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0},
                                          "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 1024}},
                          "model_name": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1",
                          "id": "chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS", "finish_reason": "stop", "logprobs": None},
    "usage_metadata": {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500,
                       "input_token_details": {"audio": 0, "cache_read": 1024},
                       "output_token_details": {"audio": 0, "reasoning": 100}},
}
# ChatAnthropic's answer through dumpd(): Anthropic reported 10 input, 1,000 read, 500 written, 20 output;
# LangChain's input_tokens sums the three inputs (1,510).
ANTHROPIC_DUMPD = {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"], "kwargs": {
    "content": "Hi", "type": "ai", "id": "run-3c1b2e4f", "tool_calls": [], "invalid_tool_calls": [],
    "response_metadata": {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "model": "claude-3-5-sonnet-20241022",
                          "model_name": "claude-3-5-sonnet-20241022", "stop_reason": "end_turn",
                          "usage": {"input_tokens": 10, "output_tokens": 20, "cache_creation_input_tokens": 500,
                                    "cache_read_input_tokens": 1000}},
    "usage_metadata": {"input_tokens": 1510, "output_tokens": 20, "total_tokens": 1530,
                       "input_token_details": {"cache_read": 1000, "cache_creation": 500}}}}
# What on_llm_end(response) receives from ChatOpenAI, as response.model_dump().
LLM_RESULT = {"generations": [[{"text": "Hello", "generation_info": {"finish_reason": "stop"}, "type": "ChatGeneration"}]],
              "llm_output": {"token_usage": {"completion_tokens": 9, "prompt_tokens": 12, "total_tokens": 21,
                                             "prompt_tokens_details": {"cached_tokens": 0}},
                             "model_name": "gpt-4o-2024-08-06", "system_fingerprint": "fp_1"},
              "run": [{"run_id": "7d5f3f8c-8e0a-4d2a-9a8d-3c1b2e4f5a6b"}], "type": "LLMResult"}


def billed(record: dict) -> dict[str, int]:
    return {kind: tokens for kind, tokens in read_inference(record).counts.items() if tokens}


def test_an_openai_message_bills_its_usage_metadata():
    inference = read_inference(OPENAI_MESSAGE)
    assert billed(OPENAI_MESSAGE) == {"input": 176, "cached_input": 1024, "output": 200, "reasoning": 100}
    assert (inference.model, inference.request_id) == ("gpt-4o-mini-2024-07-18", "chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS")


def test_an_anthropic_message_through_dumpd_takes_the_cache_out_of_the_input():
    assert billed(ANTHROPIC_DUMPD) == {"input": 10, "cached_input": 1000, "cache_write": 500, "output": 20}
    assert read_inference(ANTHROPIC_DUMPD).request_id == "msg_01XFDUDYJgAACzvnptvVoYEL"


def test_cache_writes_split_by_ttl_bill_as_cache_writes_in_either_langchain_anthropic_shape():
    # Anthropic reported 10 input, 1,000 read, 500 written (200 for 5 minutes, 300 for an hour), 20 output.
    # langchain-anthropic's releases of 2025 kept cache_creation beside its TTL parts; later ones zero it.
    usage = ANTHROPIC_DUMPD["kwargs"]["usage_metadata"]
    beside = {"cache_read": 1000, "cache_creation": 500, "ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 300}
    for details in (beside, {**beside, "cache_creation": 0}):
        record = {**ANTHROPIC_DUMPD, "kwargs": {**ANTHROPIC_DUMPD["kwargs"],
                                                "usage_metadata": {**usage, "input_token_details": details}}}
        assert billed(record) == {"input": 10, "cached_input": 1000, "cache_write": 500, "output": 20}


def test_a_callbacks_llm_result_and_its_llm_output_alone():
    inference = read_inference(LLM_RESULT)
    assert billed(LLM_RESULT) == {"input": 12, "output": 9}
    assert (inference.model, inference.request_id) == ("gpt-4o-2024-08-06", "7d5f3f8c-8e0a-4d2a-9a8d-3c1b2e4f5a6b")
    alone = read_inference(LLM_RESULT["llm_output"])
    assert (alone.model, alone.request_id, billed(LLM_RESULT["llm_output"])) == (
        "gpt-4o-2024-08-06", None, {"input": 12, "output": 9})


def test_the_meter_bills_a_logged_message_once_per_token_type():
    summary, sink = meter_lines([{**OPENAI_MESSAGE, "user": "sub_acme"}], {})
    assert sorted((e.external_subscription_id, e.properties["token_type"], e.properties["tokens"])
                  for e in sink.events) == [("sub_acme", "cached_input", 1024), ("sub_acme", "input", 176),
                                            ("sub_acme", "output", 200), ("sub_acme", "reasoning", 100)]


@pytest.mark.parametrize(("record", "message"), [
    ({**OPENAI_MESSAGE, "response_metadata": {"finish_reason": "stop"}}, "names no model"),
    ({**OPENAI_MESSAGE, "usage_metadata": {"input_tokens": 10, "output_tokens": 2,
                                           "input_token_details": {"cache_read": 11}}}, "exceed the input"),
    ({**OPENAI_MESSAGE, "usage_metadata": {"input_tokens": "10", "output_tokens": 2}}, "input_tokens must be"),
])
def test_a_langchain_record_that_cannot_be_billed_says_why(record, message):
    with pytest.raises(RecordError, match=message):
        read_inference(record)
