"""Each provider's record, read into disjoint token types. Expected splits are worked out
by hand from the provider's documented semantics (reference/inference-logs.md)."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

BEDROCK = {
    "schemaType": "ModelInvocationLog",
    "schemaVersion": "1.0",
    "timestamp": "2024-11-26T18:40:00Z",
    "accountId": "123456789012",
    "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/app/session"},
    "region": "us-east-1",
    "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10",
    "operation": "Converse",
    "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    "input": {"inputContentType": "application/json", "inputTokenCount": 1200, "cacheReadInputTokenCount": 3000,
              "cacheWriteInputTokenCount": 500},
    "output": {"outputContentType": "application/json", "outputTokenCount": 250},
    "requestMetadata": {"subscription_id": "sub_acme"},
}


def test_bedrock_counts_cache_reads_and_writes_apart_and_reduces_profile_arn():
    inference = read_inference(BEDROCK)
    assert inference.model == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert inference.counts == {"input": 1200, "cached_input": 3000, "cache_write": 500, "output": 250}
    assert inference.timestamp_ms == 1_732_646_400_000
    assert inference.request_id == "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10"


@pytest.mark.parametrize(
    ("model_id", "model"),
    [
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"),
        ("arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-8b-instruct-v1:0"),
        ("arn:aws:bedrock:eu-west-1:1:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0", "meta.llama3-2-1b-instruct-v1:0"),
        ("arn:aws:bedrock:us-east-1:1:application-inference-profile/a1b2c3", "a1b2c3"),
    ],
)
def test_bedrock_model_ids(model_id, model):
    assert read_inference({**BEDROCK, "modelId": model_id}).model == model


def test_a_bedrock_token_count_bills_nothing():
    # CountTokens is free: had Bedrock logged one, its count is what an inference would have cost, not a cost.
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference({**BEDROCK, "operation": "CountTokens", "output": {}})
    summary, sink = meter_lines([{**BEDROCK, "operation": "CountTokens", "output": {}}], {})
    assert sink.events == [] and summary.skipped["no_usage"] == 1


def test_bedrock_failed_call_without_tokens_bills_nothing():
    record = {**BEDROCK, "errorCode": "ThrottlingException", "input": {"inputTokenCount": 0}, "output": {}}
    with pytest.raises(NothingToBill):
        read_inference(record)



@pytest.mark.parametrize("output", [
    {"outputContentType": "application/json", "outputBodyJson": {"images": ["iVBORw0KGgo="]}},  # Titan, Nova Canvas
    {"outputContentType": "application/json", "outputBodyJson": {"artifacts": [{"base64": "iVBO"}]}},  # SDXL
    {"outputVideoS3Path": "s3://videos/abc/output.mp4", "outputVideoDurationSeconds": 6.0},  # Nova Reel
])
def test_bedrock_image_and_video_calls_bill_no_tokens(output):
    record = {**BEDROCK, "operation": "InvokeModel", "modelId": "amazon.titan-image-generator-v2:0",
              "input": {"inputContentType": "application/json", "inputBodyJson": {"taskType": "TEXT_IMAGE"}},
              "output": output}
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference(record)


def test_a_bedrock_text_call_without_counts_is_still_an_error():
    record = {**BEDROCK, "input": {"inputContentType": "application/json"},
              "output": {"outputContentType": "application/json", "outputBodyJson": {"output": {"message": {}}}}}
    with pytest.raises(RecordError, match="without inputTokenCount"):
        read_inference(record)

def test_openai_chat_splits_cached_out_of_prompt_and_reasoning_out_of_completion():
    record = {
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "object": "chat.completion",
        "created": 1732646400,
        "model": "gpt-4o-2024-08-06",
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 64, "audio_tokens": 0}},
    }
    inference = read_inference(record)
    # 2006 - 1920 = 86 uncached input; 300 - 64 = 236 visible output.
    assert inference.counts == {"input": 86, "cached_input": 1920, "output": 236, "reasoning": 64}
    assert sum(inference.counts.values()) == 2306
    assert inference.timestamp_ms == 1_732_646_400_000


def test_openai_responses_api_usage():
    record = {
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
        "object": "response",
        "created_at": 1732646401,
        "model": "o3-mini",
        "usage": {"input_tokens": 500, "input_tokens_details": {"cached_tokens": 100},
                  "output_tokens": 900, "output_tokens_details": {"reasoning_tokens": 700}, "total_tokens": 1400},
    }
    assert read_inference(record).counts == {"input": 400, "cached_input": 100, "output": 200, "reasoning": 700}


def test_anthropic_input_already_excludes_cache():
    record = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "model": "claude-3-5-sonnet-20241022",
        "usage": {"input_tokens": 21, "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 0,
                  "output_tokens": 393},
    }
    inference = read_inference(record)
    assert inference.counts == {"input": 21, "cached_input": 0, "cache_write": 188086, "output": 393}
    assert inference.timestamp_ms is None  # Anthropic responses carry no time: the log event's is used


def test_ollama_native_final_chunk_bills_and_others_do_not():
    final = {"model": "llama3.1:8b", "created_at": "2024-11-26T18:40:00.123456789Z", "response": "", "done": True,
             "total_duration": 5589157167, "prompt_eval_count": 26, "eval_count": 290}
    inference = read_inference(final)
    assert inference.counts == {"input": 26, "output": 290}
    assert inference.timestamp_ms == 1_732_646_400_123
    with pytest.raises(NothingToBill) as nothing:
        read_inference({"model": "llama3.1:8b", "created_at": "2024-11-26T18:40:00Z", "response": "The", "done": False})
    assert nothing.value.reason == "not_final"
    # prompt_eval_count is absent when the prompt came wholly from Ollama's cache.
    cached = {k: v for k, v in final.items() if k != "prompt_eval_count"}
    assert read_inference(cached).counts == {"input": 0, "output": 290}


def test_text_only_prompt_and_chat_records():
    prompt = read_inference({"model": "llama3.2", "prompt": "Hi", "completion": "Hello!", "timestamp": "1732646400.5"})
    assert (prompt.counts, prompt.prompt, prompt.completion, prompt.timestamp_ms) == (None, "Hi", "Hello!", 1_732_646_400_500)
    chat = read_inference({
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "image_url"}, {"type": "text", "text": "there"}]}],
        "completion": "Hello!",
        "timestamp": "2024-11-26T18:40:00Z",
        "run_id": "0b5a8a8f-4b8e-4b69-a3a0-7a9c0d9e6b11",
    })
    assert chat.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    assert chat.request_id == "0b5a8a8f-4b8e-4b69-a3a0-7a9c0d9e6b11"


def test_gateway_log_of_a_stream_without_usage_is_counted_from_its_text():
    record = {
        "request": {"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        "response": {"id": "chatcmpl-7f1d0c1e9b2a4c3d8e5f6a7b", "model": "llama3.2", "created": 1732646400,
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}}]},
        "user": "sub_7",
    }
    inference = read_inference(record)
    assert inference.counts is None and inference.completion == "Hello!"
    assert inference.messages == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1, "completion_tokens": 5},
        {"prompt_tokens": 1.5, "completion_tokens": 5},
        {"prompt_tokens": "10", "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": 1_000_000_001},
        {"prompt_tokens": True, "completion_tokens": 5},
        {},
        {"total_tokens": 50},
        {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 11}},
        {"prompt_tokens": 10, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 6}},
    ],
)
def test_impossible_counts_are_invalid(usage):
    with pytest.raises(RecordError) as error:
        read_inference({"id": "chatcmpl-1", "model": "gpt-4o", "usage": usage})
    assert error.value.reason == "invalid_counts"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2, 3], "unknown_format"),
        ({"hello": "world"}, "unknown_format"),
        ({"model": "gpt-4o", "choices": [{"message": {"content": "hi"}}]}, "unknown_format"),
        ({"model": "", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}, "invalid_record"),
        ({"model": "llama3.2", "prompt": 42}, "invalid_record"),
        ({"model": "llama3.2", "messages": [{"content": "no role"}]}, "invalid_record"),
        ({"model": "llama3.2", "messages": []}, "invalid_record"),
        ({**BEDROCK, "timestamp": "last tuesday"}, "invalid_timestamp"),
        ({**BEDROCK, "input": {}, "output": {}}, "invalid_counts"),
        ({**BEDROCK, "input": "1200 tokens"}, "invalid_record"),
    ],
)
def test_unusable_records_get_a_reason(record, reason):
    with pytest.raises(RecordError) as error:
        read_inference(record)
    assert error.value.reason == reason


CONVERSE = {  # what boto3's bedrock-runtime converse() returns, logged as JSON with the modelId the app asked for
    "ResponseMetadata": {"RequestId": "5ffd3a4e-2d5f-4a8b-9c1e-0123456789ab", "HTTPStatusCode": 200,
                         "HTTPHeaders": {"date": "Thu, 28 Nov 2024 10:00:00 GMT"}, "RetryAttempts": 0},
    "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn",
    "usage": {"inputTokens": 30, "outputTokens": 628, "totalTokens": 1158, "cacheReadInputTokens": 400,
              "cacheWriteInputTokens": 100},
    "metrics": {"latencyMs": 1275},
    "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
}


def test_a_logged_bedrock_converse_response_bills_as_its_invocation_log_would():
    inference = read_inference(CONVERSE)
    # inputTokens is the uncached part: the reads and writes are beside it (30 + 400 + 100 + 628 = 1158).
    assert inference.counts == {"input": 30, "cached_input": 400, "cache_write": 100, "output": 628}
    assert inference.model == "anthropic.claude-3-7-sonnet-20250219-v1:0"
    assert inference.request_id == "5ffd3a4e-2d5f-4a8b-9c1e-0123456789ab"
    assert inference.timestamp_ms == 1_732_788_000_000  # the response's Date header, 2024-11-28T10:00:00Z


def test_a_converse_response_from_the_javascript_sdk_is_identified_by_its_request_id():
    # console.log({modelId, ...response}) of @aws-sdk/client-bedrock-runtime's ConverseCommand output, as JSON.
    record = {"$metadata": {"httpStatusCode": 200, "requestId": "7b1e0c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e",
                            "attempts": 1, "totalRetryDelay": 0},
              "metrics": {"latencyMs": 512}, "output": {"message": {"role": "assistant", "content": []}},
              "stopReason": "end_turn", "usage": {"inputTokens": 30, "outputTokens": 10, "totalTokens": 40},
              "modelId": "amazon.nova-pro-v1:0"}
    inference = read_inference(record)
    assert (inference.request_id, inference.counts) == ("7b1e0c2d-3f4a-4b5c-8d6e-9f0a1b2c3d4e",
                                                        {"input": 30, "cached_input": 0, "cache_write": 0, "output": 10})


def test_a_converse_response_without_its_model_is_a_clear_error():
    record = {key: value for key, value in CONVERSE.items() if key != "modelId"}
    with pytest.raises(RecordError, match="names no model"):
        read_inference(record)
    assert read_inference({**record, "ResponseMetadata": None, "model": "amazon.nova-pro-v1:0"}).timestamp_ms is None


@pytest.mark.parametrize("answer", [
    {"error": {"message": "Invalid 'messages': empty array.", "type": "invalid_request_error", "param": "messages",
               "code": "empty_array"}},  # OpenAI's error body
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},  # Anthropic's, or its stream event
    {"type": "error", "error": {"type": "rate_limit_error", "message": "x"}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"},
    {"type": "error", "sequence_number": 7, "code": "ERR_SOMETHING", "message": "Something went wrong",
     "param": None},  # the Responses API stream's error event
    {"error": "model \"llama3.3\" not found, try pulling it first"},  # Ollama's, also mid-stream
    {"error": "Input validation error: `inputs` must have less than 4096 tokens", "error_type": "validation"},  # TGI's
    {"object": "error", "message": "The model `foo` does not exist.", "type": "NotFoundError", "param": None,
     "code": 404},  # vLLM's ErrorResponse
    {"object": "error", "message": "Service tier capacity exceeded", "type": "service_tier_capacity_exceeded",
     "param": None, "code": "3505"},  # Mistral's
    {"Error": {"Message": "Too many requests", "Code": "ThrottlingException"}, "message": "Too many requests",
     "ResponseMetadata": {"RequestId": "5f2a7c3e-0b7d-4a45-9a53-000000000001", "HTTPStatusCode": 429,
                          "HTTPHeaders": {}, "RetryAttempts": 4}},  # a boto3 ClientError's response, as an app logs it
])
def test_an_error_answer_bills_nothing_and_is_no_dead_letter(answer):
    with pytest.raises(NothingToBill, match="failed_request"):
        read_inference(answer)


def test_an_error_key_beside_usage_or_a_message_beside_counts_is_still_read_for_its_usage():
    # Only answers with nothing but the error's own fields are error answers.
    record = {"error": "partial", "model": "llama3.2", "done": True, "prompt_eval_count": 4, "eval_count": 2,
              "created_at": "2024-11-26T18:40:00Z"}
    assert read_inference(record).counts == {"input": 4, "output": 2}
    with pytest.raises(RecordError) as error:
        read_inference({"object": "error", "message": "x", "choices_so_far": 3})
    assert error.value.reason == "unknown_format"


def test_llama_cpp_servers_own_completion_answer_bills_the_whole_prompt_and_the_prediction():
    # llama-server's /completion (its README's example): tokens_cached is the slot's context after the call
    # (prompt + prediction - 1 here), not a cache hit.
    answer = {"content": " The LoRaWAN Specification", "id_slot": 0, "stop": True,
              "model": "models/llama-2-7b.Q4_K_M.gguf", "tokens_predicted": 20, "tokens_evaluated": 6,
              "prompt": "What is LoRA:", "stopped_limit": True, "tokens_cached": 25,
              "timings": {"prompt_n": 6, "predicted_n": 20}}
    inference = read_inference(answer)
    assert (inference.model, inference.counts) == ("models/llama-2-7b.Q4_K_M.gguf", {"input": 6, "output": 20})
    with pytest.raises(NothingToBill, match="not_final"):  # a streamed chunk before the last
        read_inference({"content": " The", "stop": False, "id_slot": 0, "tokens_predicted": 1, "tokens_evaluated": 6,
                        "model": "models/llama-2-7b.Q4_K_M.gguf"})
