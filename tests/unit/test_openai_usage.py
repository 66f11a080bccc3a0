"""OpenAI-shaped usage as the servers that speak OpenAI's API write it: each record billed whole (every token
once, in its own type), through the meter (its one-step path first) and through the general reader alike.

The expected splits are worked out by hand from what each server documents or its source does, noted per case."""

from __future__ import annotations

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import read_inference

CONFIG = {"default_subscription": "sub_1"}


def chat(model: str, usage: dict, request_id: str = "chatcmpl-0b7d4a459a532d7f3c8f9e10") -> dict:
    return {"id": request_id, "object": "chat.completion", "created": 1794744000, "model": model, "choices": [],
            "usage": usage}


def billed(record: dict) -> dict[str, int]:
    """The tokens the meter bills for ``record``, by token type (and checks it dead-lettered nothing)."""
    summary, sink = meter_lines([record], CONFIG)
    assert sink.dead_letters == [] and summary.metered == 1
    return {e.properties["token_type"]: e.properties["tokens"] for e in sink.events}


def read(record: dict) -> dict[str, int]:
    return {kind: tokens for kind, tokens in read_inference(record).counts.items() if tokens}


# LiteLLM's answer for a Claude model that read 1,000 tokens from the cache, wrote 500 and took 10 more
# (Anthropic: input_tokens 10, cache_read 1000, cache_creation 500, output 20). Its Anthropic transformation adds
# reads and writes into prompt_tokens (10 + 1000 + 500 = 1510), the details say which is which.
LITELLM_CLAUDE = chat("claude-sonnet-4-20250514", {
    "prompt_tokens": 1510, "completion_tokens": 20, "total_tokens": 1530,
    "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 500},
    "cache_creation_input_tokens": 500, "cache_read_input_tokens": 1000})
CLAUDE_SPLIT = {"input": 10, "cached_input": 1000, "cache_write": 500, "output": 20}


@pytest.mark.parametrize("reader", [billed, read])
def test_a_litellm_answer_for_claude_bills_every_token_once(reader):
    # Read as Anthropic's own usage (it has cache_read_input_tokens), it lost the 10 input and 20 output tokens.
    assert reader(LITELLM_CLAUDE) == CLAUDE_SPLIT


@pytest.mark.parametrize("reader", [billed, read])
def test_litellm_releases_that_wrote_the_cache_counts_elsewhere(reader):
    # Its newest releases name the writes cache_write_tokens in the details.
    newest = chat("claude-sonnet-4-20250514", {
        "prompt_tokens": 1510, "completion_tokens": 20, "total_tokens": 1530,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 500, "cache_creation_tokens": 500},
        "cache_creation_input_tokens": 500, "cache_read_input_tokens": 1000})
    # Releases that added only the reads into prompt_tokens (1010) and reported the 500 written beside it.
    writes_beside = chat("claude-sonnet-4-20250514", {
        "prompt_tokens": 1010, "completion_tokens": 20, "total_tokens": 1030,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "cache_creation_input_tokens": 500, "cache_read_input_tokens": 1000})
    # Its first releases: prompt_tokens was Anthropic's input_tokens alone, both cache counts beside, no details.
    all_beside = chat("claude-3-5-sonnet-20240620", {
        "prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30,
        "cache_creation_input_tokens": 500, "cache_read_input_tokens": 1000})
    assert reader(newest) == reader(writes_beside) == reader(all_beside) == CLAUDE_SPLIT


@pytest.mark.parametrize("reader", [billed, read])
def test_openrouter_cache_writes_are_their_own_type(reader):
    # OpenRouter's usage accounting: 194 prompt tokens, of which 100 written to the cache, none read.
    record = chat("anthropic/claude-3.5-sonnet", {
        "prompt_tokens": 194, "completion_tokens": 2, "total_tokens": 196, "cost": 0.95,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}}, request_id="gen-1742843340-abc123def456")
    assert reader(record) == {"input": 94, "cache_write": 100, "output": 2}


@pytest.mark.parametrize("reader", [billed, read])
def test_deepseek_cache_hits_are_cached_input(reader):
    # DeepSeek: prompt_tokens = prompt_cache_hit_tokens + prompt_cache_miss_tokens (60 + 40).
    record = chat("deepseek-chat", {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                                    "prompt_cache_hit_tokens": 60, "prompt_cache_miss_tokens": 40},
                  request_id="930c60df-bf64-41c9-a88e-3ec75f81e00e")
    assert reader(record) == {"input": 40, "cached_input": 60, "output": 20}


@pytest.mark.parametrize("reader", [billed, read])
def test_xai_reasoning_outside_the_completion_is_billed_too(reader):
    # xAI counts reasoning apart from completion_tokens: total 135 = 32 prompt + 9 completion + 94 reasoning.
    # (Read the OpenAI way, 94 reasoning "inside" 9 completion tokens was an invalid_counts dead letter.)
    grok = chat("grok-4-0709", {
        "prompt_tokens": 32, "completion_tokens": 9, "total_tokens": 135,
        "prompt_tokens_details": {"text_tokens": 32, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 6},
        "completion_tokens_details": {"reasoning_tokens": 94, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}, "num_sources_used": 0},
        request_id="a3d1008e-4544-40d4-d075-11527e794e4a")
    assert reader(grok) == {"input": 26, "cached_input": 6, "output": 9, "reasoning": 94}
    # Fewer reasoning than completion tokens: only the total tells, 432 = 32 + 300 + 100.
    mini = chat("grok-3-mini", {"prompt_tokens": 32, "completion_tokens": 300, "total_tokens": 432,
                                "completion_tokens_details": {"reasoning_tokens": 100}},
                request_id="a3d1008e-4544-40d4-d075-11527e794e4b")
    assert reader(mini) == {"input": 32, "output": 300, "reasoning": 100}


@pytest.mark.parametrize("reader", [billed, read])
def test_a_gateways_gemini_thoughts_outside_the_completion(reader):
    # Gemini's usageMetadata (prompt 21, thoughts 60, total 81, no visible output) as some gateways pass it on:
    # the thoughts as reasoning_tokens, completion_tokens the candidates' 0, total_tokens Gemini's 81.
    record = chat("gemini-2.5-flash", {"prompt_tokens": 21, "completion_tokens": 0, "total_tokens": 81,
                                       "completion_tokens_details": {"reasoning_tokens": 60}})
    assert reader(record) == {"input": 21, "reasoning": 60}


@pytest.mark.parametrize("reader", [billed, read])
def test_openai_reasoning_stays_inside_the_completion(reader):
    # OpenAI: total 332 = 32 + 300, the 100 reasoning tokens are part of the 300.
    record = chat("o4-mini-2025-04-16", {"prompt_tokens": 32, "completion_tokens": 300, "total_tokens": 332,
                                         "completion_tokens_details": {"reasoning_tokens": 100}})
    assert reader(record) == {"input": 32, "output": 200, "reasoning": 100}


def test_reasoning_past_the_completion_with_no_total_is_a_dead_letter_not_a_guess():
    record = chat("grok-3-mini", {"prompt_tokens": 32, "completion_tokens": 9,
                                  "completion_tokens_details": {"reasoning_tokens": 94}})
    summary, sink = meter_lines([record], CONFIG)
    assert sink.events == [] and [d.reason for d in sink.dead_letters] == ["invalid_counts"]
    assert "reasoning 94" in sink.dead_letters[0].detail


def test_a_streamed_final_chunk_is_read_the_same_way():
    chunk = {"id": "a3d1008e-4544-40d4-d075-11527e794e4c", "object": "chat.completion.chunk", "created": 1794744000,
             "model": "grok-3-mini", "choices": [],
             "usage": {"prompt_tokens": 32, "completion_tokens": 9, "total_tokens": 135,
                       "completion_tokens_details": {"reasoning_tokens": 94}}}
    assert billed(chunk) == {"input": 32, "output": 9, "reasoning": 94}


# The audio endpoints (openai-python's types/audio/transcription.py, UsageTokens) spell the breakdown
# input_token_details, as the Realtime API does, not input_tokens_details: gpt-4o-transcribe bills its 14 audio
# tokens at the audio price, and its 45 output tokens are text.
TRANSCRIPTION = {"id": "req_5c0a4d1e2f3b4a5c9d8e7f6a", "model": "gpt-4o-transcribe", "text": "Hello, this is a test.",
                 "usage": {"type": "tokens", "input_tokens": 20, "output_tokens": 45, "total_tokens": 65,
                           "input_token_details": {"text_tokens": 6, "audio_tokens": 14}}}


@pytest.mark.parametrize("reader", [billed, read])
def test_a_transcriptions_audio_tokens_are_input_audio(reader):
    # It was billed as 20 plain input tokens: the audio's share at the text price.
    assert reader(TRANSCRIPTION) == {"input": 6, "input_audio": 14, "output": 45}
    # Without the request id the app may not log, the general reader alone reads it: the same split.
    assert reader({k: v for k, v in TRANSCRIPTION.items() if k != "id"}) == {"input": 6, "input_audio": 14,
                                                                            "output": 45}


def test_a_whisper_transcription_billed_by_the_second_is_no_usage_not_a_dead_letter():
    summary, sink = meter_lines([{"model": "whisper-1", "text": "Hi.", "usage": {"type": "duration", "duration": 3.2}}],
                                CONFIG)
    assert sink.events == [] and sink.dead_letters == [] and summary.skipped == {"no_usage": 1}


def test_the_audio_endpoints_streamed_parts_bill_once_at_their_done_event():
    # A streamed transcription (transcript.text.delta ... transcript.text.done) and a streamed speech
    # (speech.audio.delta ... speech.audio.done), logged event by event, with the model the app logs beside.
    events = [{"type": "transcript.text.delta", "delta": "Hel", "logprobs": []},
              {"type": "transcript.text.delta", "delta": "lo.", "logprobs": []},
              {"type": "transcript.text.done", "text": "Hello.", "model": "gpt-4o-mini-transcribe",
               "usage": {"type": "tokens", "input_tokens": 20, "output_tokens": 3, "total_tokens": 23,
                         "input_token_details": {"text_tokens": 0, "audio_tokens": 20}}},
              {"type": "speech.audio.delta", "audio": "UklGRiQAAABXQVZF"},
              {"type": "speech.audio.done", "model": "gpt-4o-mini-tts",
               "usage": {"input_tokens": 14, "output_tokens": 101, "total_tokens": 115}}]
    summary, sink = meter_lines(events, CONFIG)
    assert sink.dead_letters == [] and summary.skipped == {"stream_chunk": 3} and summary.metered == 2
    by_model = {}
    for e in sink.events:
        by_model.setdefault(e.properties["model"], {})[e.properties["token_type"]] = e.properties["tokens"]
    assert by_model == {"gpt-4o-mini-transcribe": {"input_audio": 20, "output": 3},
                        "gpt-4o-mini-tts": {"input": 14, "output": 101}}


def test_a_moderation_is_no_usage_not_a_dead_letter():
    moderation = {"id": "modr-970d409ef3bef3b70c73d8232df86e7d", "model": "omni-moderation-latest",
                  "results": [{"flagged": False, "categories": {}, "category_scores": {}}]}
    summary, sink = meter_lines([moderation], CONFIG)
    assert sink.events == [] and sink.dead_letters == [] and summary.skipped == {"no_usage": 1}


@pytest.mark.parametrize("reader", [billed, read])
def test_moonshot_cached_tokens_beside_the_details_are_cached_input(reader):
    # Kimi (and GLM, MiniMax) report cache hits as usage.cached_tokens, part of prompt_tokens: 1,000 prompt
    # tokens of which 600 hit the cache leave 400 uncached. They were all billed at the uncached price.
    record = chat("kimi-k2.6", {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
                                "cached_tokens": 600})
    assert reader(record) == {"input": 400, "cached_input": 600, "output": 50}


@pytest.mark.parametrize("reader", [billed, read])
def test_perplexity_deep_research_bills_its_reasoning_and_citations(reader):
    # Perplexity's sonar-deep-research answer (its API reference's example): total_tokens is prompt + completion
    # (19 + 7,163); reasoning and citation tokens are counted and priced beside them. The citations are sources
    # read into the model: input (19 + 21,213). Both were dropped: most of what the call cost.
    record = chat("sonar-deep-research", {"prompt_tokens": 19, "completion_tokens": 7163, "total_tokens": 7182,
                                          "citation_tokens": 21213, "num_search_queries": 27,
                                          "reasoning_tokens": 73997, "search_context_size": "low"})
    assert reader(record) == {"input": 21232, "output": 7163, "reasoning": 73997}


def test_perplexity_counts_past_the_largest_event_are_a_dead_letter():
    record = chat("sonar-deep-research", {"prompt_tokens": 10**9, "completion_tokens": 1, "citation_tokens": 1})
    summary, sink = meter_lines([record], CONFIG)
    assert [letter.reason for letter in sink.dead_letters] == ["invalid_counts"] and sink.events == []
