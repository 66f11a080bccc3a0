"""The Vercel AI SDK's results as a TypeScript app logs them (`generateText`'s result or `onFinish`'s event, as
JSON.stringify writes them: undefined counts left out). What each release's counts hold comes from the SDK's
provider packages (ai 4.3, 5.0 and the current release); the expected splits are worked out by hand."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import read_inference
from tokenmeter.metering.records import RecordError

RESPONSE = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "timestamp": "2024-11-26T18:40:00.000Z",
            "modelId": "gpt-4o-2024-08-06"}


def result(usage: dict, metadata: dict | None = None, **more) -> dict:
    record = {"text": "Hello!", "finishReason": "stop", "usage": usage, "response": RESPONSE, "warnings": [], **more}
    if metadata is not None:
        record["providerMetadata"] = metadata
    return record


def test_the_current_usage_splits_every_provider_alike():
    openai = {"inputTokens": 1200, "outputTokens": 300, "totalTokens": 1500,
              "inputTokenDetails": {"noCacheTokens": 176, "cacheReadTokens": 1024},
              "outputTokenDetails": {"textTokens": 200, "reasoningTokens": 100},
              "raw": {"prompt_tokens": 1200, "completion_tokens": 300}}
    inference = read_inference(result(openai))
    assert (inference.model, inference.request_id, inference.timestamp_ms) == (
        "gpt-4o-2024-08-06", "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", 1732646400000)
    assert inference.counts == {"input": 176, "cached_input": 1024, "output": 200, "reasoning": 100}
    # Anthropic's: 10 uncached + 50 read + 100 written = 160 in all.
    anthropic = {"inputTokens": 160, "outputTokens": 20, "totalTokens": 180,
                 "inputTokenDetails": {"noCacheTokens": 10, "cacheReadTokens": 50, "cacheWriteTokens": 100},
                 "outputTokenDetails": {"textTokens": 20}}
    assert read_inference(result(anthropic)).counts == {"input": 10, "cached_input": 50, "cache_write": 100,
                                                        "output": 20, "reasoning": 0}


def test_release_5_reads_the_cache_as_the_provider_counted_it():
    # OpenAI (providerMetadata.openai): cached and reasoning inside the counts.
    openai = {"inputTokens": 1200, "outputTokens": 300, "totalTokens": 1500, "cachedInputTokens": 1024,
              "reasoningTokens": 100}
    assert read_inference(result(openai, {"openai": {}})).counts == {
        "input": 176, "cached_input": 1024, "output": 200, "reasoning": 100}
    # Anthropic: inputTokens leaves reads out, writes only in providerMetadata.
    anthropic = {"inputTokens": 100, "outputTokens": 20, "totalTokens": 120, "cachedInputTokens": 50}
    metadata = {"anthropic": {"cacheCreationInputTokens": 30, "usage": {"input_tokens": 100}}}
    assert read_inference(result(anthropic, metadata)).counts == {
        "input": 100, "cached_input": 50, "cache_write": 30, "output": 20, "reasoning": 0}
    # Bedrock: the same, writes under bedrock.usage.
    bedrock = {"inputTokens": 50, "outputTokens": 7, "totalTokens": 57, "cachedInputTokens": 40}
    assert read_inference(result(bedrock, {"bedrock": {"usage": {"cacheWriteInputTokens": 30}}})).counts == {
        "input": 50, "cached_input": 40, "cache_write": 30, "output": 7, "reasoning": 0}
    # Google: cached inside the prompt, thoughts outside the output (total 500 + 40 + 100).
    google = {"inputTokens": 500, "outputTokens": 40, "totalTokens": 640, "reasoningTokens": 100,
              "cachedInputTokens": 200}
    assert read_inference(result(google, {"google": {"groundingMetadata": None}})).counts == {
        "input": 300, "cached_input": 200, "output": 40, "reasoning": 100}


def test_release_5_cached_tokens_with_no_word_of_whose_are_a_dead_letter_that_says_so():
    usage = {"inputTokens": 1200, "outputTokens": 300, "cachedInputTokens": 1024}
    with pytest.raises(RecordError, match="log providerMetadata") as error:
        read_inference(result(usage))
    assert error.value.reason == "invalid_counts"
    # More cached than input can only be beside it.
    assert read_inference(result({"inputTokens": 10, "outputTokens": 2, "cachedInputTokens": 50})).counts == {
        "input": 10, "cached_input": 50, "cache_write": 0, "output": 2, "reasoning": 0}


def test_release_4_takes_each_providers_details_from_provider_metadata():
    usage = {"promptTokens": 1200, "completionTokens": 300, "totalTokens": 1500}
    openai = {"openai": {"reasoningTokens": 100, "cachedPromptTokens": 1024, "acceptedPredictionTokens": 0}}
    assert read_inference(result(usage, openai)).counts == {"input": 176, "cached_input": 1024, "output": 200,
                                                            "reasoning": 100}
    usage = {"promptTokens": 10, "completionTokens": 20, "totalTokens": 30}
    anthropic = {"anthropic": {"cacheCreationInputTokens": 100, "cacheReadInputTokens": 50}}
    assert read_inference(result(usage, anthropic)).counts == {"input": 10, "cached_input": 50, "cache_write": 100,
                                                               "output": 20}
    # A count the provider did not give is NaN in the SDK, null once written as JSON.
    assert read_inference(result({"promptTokens": 7, "completionTokens": None})).counts == {
        "input": 7, "cached_input": 0, "output": 0, "reasoning": 0}


def test_several_steps_bill_their_total_and_the_model_can_be_logged_beside():
    record = result({"inputTokens": 10, "outputTokens": 5, "cachedInputTokens": 0}, {"openai": {}},
                    totalUsage={"inputTokens": 30, "outputTokens": 15, "cachedInputTokens": 0})
    assert read_inference(record).counts == {"input": 30, "cached_input": 0, "output": 15, "reasoning": 0}
    logged = {"model": "claude-sonnet-4-5", "userId": "sub_1",
              "usage": {"inputTokens": 160, "outputTokens": 20, "inputTokenDetails": {"cacheReadTokens": 150},
                        "outputTokenDetails": {}}}
    inference = read_inference(logged)
    assert (inference.model, inference.request_id, inference.counts["input"]) == ("claude-sonnet-4-5", None, 10)
    with pytest.raises(RecordError, match="'model' must name the model"):
        read_inference({"usage": logged["usage"]})


def test_a_result_logged_twice_bills_once():
    record = result({"inputTokens": 12, "outputTokens": 3, "inputTokenDetails": {}, "outputTokenDetails": {}})
    summary, sink = meter_lines([record, record], {"default_subscription": "sub_1"})
    assert summary.metered == 2 and not sink.dead_letters
    assert len({e.transaction_id for e in sink.events}) == 2
    assert sorted({(e.properties["token_type"], e.properties["tokens"]) for e in sink.events}) == [
        ("input", 12), ("output", 3)]


def test_an_embedding_counts_its_tokens_as_input():
    embedding = {"value": "sunny day at the beach", "embedding": [0.1, -0.2], "usage": {"tokens": 6},
                 "model": "text-embedding-3-small"}
    assert read_inference(embedding).counts == {"input": 6}
    many = {"values": ["a", "b"], "embeddings": [[0.1], [0.2]], "usage": {"tokens": 2}, "model": "text-embedding-3-small"}
    assert read_inference(many).counts == {"input": 2}


def _stream(finish_step: str, steps: list[tuple[str, dict]], finish: dict) -> list[dict]:
    """The parts of a logged `fullStream`: per step its start, a text delta and its finish, then the stream's."""
    parts: list[dict] = [{"type": "start"}]
    for response_id, usage in steps:
        parts += [{"type": "start-step", "request": {}, "warnings": []},
                  {"type": "text-delta", "id": "0", "text": "Hi"},
                  {"type": finish_step, "finishReason": "tool-calls", "usage": usage, "providerMetadata": {"openai": {}},
                   "response": {**RESPONSE, "id": response_id}}]
    return [*parts, finish]


def test_a_logged_stream_bills_each_step_once_and_not_its_total_again():
    # Release 6: two steps of 100+20 (40 of them cached) and 150+30; the finish part's total is their sum.
    steps = [("chatcmpl-step1", {"inputTokens": 100, "outputTokens": 20, "inputTokenDetails": {"cacheReadTokens": 40},
                                 "outputTokenDetails": {}}),
             ("chatcmpl-step2", {"inputTokens": 150, "outputTokens": 30, "inputTokenDetails": {},
                                 "outputTokenDetails": {}})]
    total = {"inputTokens": 250, "outputTokens": 50, "inputTokenDetails": {"cacheReadTokens": 40},
             "outputTokenDetails": {}}
    finish = {"type": "finish", "finishReason": "stop", "rawFinishReason": "stop", "totalUsage": total,
              "model": "gpt-4o-2024-08-06"}  # an app that logs the model beside each part
    summary, sink = meter_lines(_stream("finish-step", steps, finish), {"default_subscription": "sub_1"})
    billed: dict[str, int] = {}
    for event in sink.events:
        billed[event.properties["token_type"]] = billed.get(event.properties["token_type"], 0) + event.properties["tokens"]
    assert billed == {"input": 210, "cached_input": 40, "output": 50}
    # The start, two step starts, two text deltas and the finish: parts, neither billed nor dead letters.
    assert summary.metered == 2 and not sink.dead_letters and summary.skipped["stream_chunk"] == 6


def test_only_the_sdks_own_parts_are_taken_for_stream_parts():
    parts = [{"type": "tool-call", "toolCallId": "call_1", "toolName": "weather", "input": {"city": "Oslo"}},
             {"type": "source", "sourceType": "url", "id": "s1", "url": "https://example.com"},
             {"type": "abort"}]
    summary, sink = meter_lines(parts, {"default_subscription": "sub_1"})
    assert summary.skipped["stream_chunk"] == 3 and not sink.dead_letters
    # The same one-word types without what the SDK writes beside them are someone else's records.
    others = [{"type": "file", "path": "/tmp/x"}, {"type": "start", "service": "api"}, {"type": "tool-call"}]
    summary, sink = meter_lines(others, {"default_subscription": "sub_1"})
    assert [letter.reason for letter in sink.dead_letters] == ["unknown_format"] * 3


def test_a_release_4_stream_total_does_not_reuse_its_last_steps_ids():
    # Release 4's finish part carries the last step's response: billed, it took that step's ids for the total.
    steps = [("chatcmpl-a", {"promptTokens": 100, "completionTokens": 20, "totalTokens": 120}),
             ("chatcmpl-b", {"promptTokens": 150, "completionTokens": 30, "totalTokens": 180})]
    finish = {"type": "finish", "finishReason": "stop", "usage": {"promptTokens": 250, "completionTokens": 50,
                                                                  "totalTokens": 300},
              "providerMetadata": {"openai": {}}, "response": {**RESPONSE, "id": "chatcmpl-b"}}
    summary, sink = meter_lines(_stream("step-finish", steps, finish), {"default_subscription": "sub_1"})
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events) == [
        ("input", 100), ("input", 150), ("output", 20), ("output", 30)]
    assert len({e.transaction_id for e in sink.events}) == 4 and not sink.dead_letters


def _step(number: int, response_id: str, usage: dict) -> dict:
    """A step as the SDK's step result holds it (release 6: callId, stepNumber, model beside the rest)."""
    return {"callId": "call-1", "stepNumber": number, "model": {"provider": "openai.responses", "modelId": "gpt-4o"},
            "content": [{"type": "text", "text": "Hi"}], "finishReason": "tool-calls", "usage": usage, "warnings": [],
            "request": {"body": {}}, "response": {**RESPONSE, "id": response_id, "messages": []},
            "providerMetadata": {"openai": {"responseId": response_id}}}


STEP_USAGE = [{"inputTokens": 100, "outputTokens": 20, "inputTokenDetails": {"cacheReadTokens": 40},
               "outputTokenDetails": {}},
              {"inputTokens": 150, "outputTokens": 30, "inputTokenDetails": {}, "outputTokenDetails": {"reasoningTokens": 10}}]


def test_a_logged_result_bills_its_steps_each_under_its_own_response():
    # JSON.stringify of generateText's result (release 6) keeps only its own fields: the steps and totalUsage
    # (release 5: the steps alone); its usage and response are getters, left out.
    steps = [_step(0, "resp_step_0000000000000001", STEP_USAGE[0]), _step(1, "resp_step_0000000000000002", STEP_USAGE[1])]
    result_json = {"steps": steps, "totalUsage": {"inputTokens": 250, "outputTokens": 50}, "_output": None,
                   "initialResponseMessages": [], "userId": "sub_7"}
    release_5 = {"steps": steps, "resolvedOutput": None, "userId": "sub_7"}
    for record in (result_json, release_5):
        summary, sink = meter_lines([record], {"subscription_from": ["userId"]})
        billed = sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events)
        # Step 1: 100 in, 40 of them cached, 20 out; step 2: 150 in, 30 out, 10 of them reasoning.
        assert billed == [("cached_input", 40), ("input", 60), ("input", 150), ("output", 20), ("output", 20),
                          ("reasoning", 10)]
        assert {e.external_subscription_id for e in sink.events} == {"sub_7"}
        assert summary.records == 2 and summary.metered == 2 and not sink.dead_letters


def test_steps_logged_on_their_own_and_in_the_final_event_bill_once():
    steps = [_step(0, "resp_step_0000000000000001", STEP_USAGE[0]), _step(1, "resp_step_0000000000000002", STEP_USAGE[1])]
    on_finish = {**steps[1], "steps": steps, "totalUsage": {"inputTokens": 250, "outputTokens": 50,
                                                            "inputTokenDetails": {"cacheReadTokens": 40},
                                                            "outputTokenDetails": {"reasoningTokens": 10}}}
    summary, sink = meter_lines([steps[0], steps[1], on_finish], {"default_subscription": "sub_1"})
    unique = {e.transaction_id: (e.properties["token_type"], e.properties["tokens"]) for e in sink.events}
    assert len(unique) == 6  # each step's events twice over, under the same ids and counts
    assert all(unique[e.transaction_id] == (e.properties["token_type"], e.properties["tokens"]) for e in sink.events)
    assert sum(tokens for _, tokens in unique.values()) == 100 + 20 + 150 + 30


def test_a_streams_parts_and_its_final_event_logged_together_bill_once():
    steps = [_step(0, "resp_step_0000000000000001", STEP_USAGE[0]), _step(1, "resp_step_0000000000000002", STEP_USAGE[1])]
    parts = _stream("finish-step", [(s["response"]["id"], s["usage"]) for s in steps],
                    {"type": "finish", "finishReason": "stop", "totalUsage": {"inputTokens": 250, "outputTokens": 50}})
    on_finish = {**steps[1], "steps": steps, "totalUsage": {"inputTokens": 250, "outputTokens": 50}}
    summary, sink = meter_lines([*parts, on_finish], {"default_subscription": "sub_1"})
    unique = {e.transaction_id: e.properties["tokens"] for e in sink.events}
    assert len(unique) == 6 and sum(unique.values()) == 100 + 20 + 150 + 30 and not sink.dead_letters


def test_a_steps_dead_letter_replays_with_what_the_app_logged_around_it_under_the_same_ids():
    # Attributed by the result's own field (userId), which the config first does not read: both steps are dead
    # letters. Each letter holds the result with that step alone, so a replay with the fixed config bills it as
    # the result read fresh does.
    from conftest import Collect

    from tokenmeter.core import parse_config
    from tokenmeter.metering.metering import Meter
    from tokenmeter.metering.records import RawRecord
    from tokenmeter.metering.tokenizer_pool import TokenizerPool

    # Release 4's steps carry no response id long enough to stand for them: they are named by their place.
    steps = [_step(0, "s1", STEP_USAGE[0]), _step(1, "s2", STEP_USAGE[1])]
    logged = {"steps": steps, "userId": "sub_7"}
    _, before = meter_lines([logged], {"subscription_from": ["user"]})
    assert [letter.reason for letter in before.dead_letters] == ["unattributed", "unattributed"]
    fixed = parse_config({"subscription_from": ["userId"]})
    replayed = Collect()
    meter = Meter(fixed, TokenizerPool({}), replayed)
    for letter in before.dead_letters:
        meter.add(RawRecord(letter.source, letter.identity, letter.record, letter.fallback_ms))
    meter.finish()
    _, fresh = meter_lines([logged], {"subscription_from": ["userId"]})
    assert not replayed.dead_letters
    assert sorted((e.transaction_id, e.external_subscription_id, e.properties["tokens"]) for e in replayed.events) == \
        sorted((e.transaction_id, e.external_subscription_id, e.properties["tokens"]) for e in fresh.events)
    assert sum(e.properties["tokens"] for e in replayed.events) == 100 + 20 + 150 + 30
