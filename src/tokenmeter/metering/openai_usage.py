"""OpenAI's `usage` object, as OpenAI writes it and as the servers that speak its API write it.

OpenAI puts cached, audio and image tokens inside the prompt's count, and reasoning, audio and image tokens
inside the completion's (chat completions: prompt/completion tokens; the Responses API and the image
endpoints: input/output tokens). Servers answering in the same shape report more, in fields of their own,
and some count a part outside where OpenAI counts it inside:
- LiteLLM (its proxy's answers, and the provider response its logging payload embeds), for Anthropic models:
  cache reads in `prompt_tokens_details.cached_tokens`, inside the prompt, and again beside as
  `cache_read_input_tokens`; cache writes inside the prompt where the details report them
  (`cache_creation_tokens`, `cache_write_tokens`), beside it where only `cache_creation_input_tokens` does.
  Its first releases kept reads outside the prompt as well: those records have no `cached_tokens` detail.
- OpenRouter: cache writes as `prompt_tokens_details.cache_write_tokens`, inside the prompt.
- DeepSeek: cache reads as `prompt_cache_hit_tokens` (the prompt is hits plus misses); Moonshot's Kimi, GLM and
  MiniMax as `usage.cached_tokens`, also inside the prompt.
- xAI, and gateways that map Gemini's thoughts the way Gemini counts them: reasoning tokens outside
  `completion_tokens`; `total_tokens` is prompt + completion + reasoning, and that sum is what tells the two
  countings apart (OpenAI's total is prompt + completion).
- Perplexity (sonar-deep-research): `reasoning_tokens` and `citation_tokens` beside the prompt and completion
  (its total is prompt + completion), each billed apart: reasoning is reasoning, and the citations (the sources
  read into the model) are input.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenmeter.core.events import MAX_TOKENS

from .fields import carve, count_at, object_at
from .records import INVALID_COUNTS, RecordError

VENDOR_DETAIL_KEYS = ("cache_creation_tokens", "cache_write_tokens")
SINGULAR_DETAILS = {"input_tokens": "input_token_details", "output_tokens": "output_token_details"}


def openai_counts(usage: dict[str, Any]) -> dict[str, int]:
    """Disjoint counts of an OpenAI-shaped usage object (RecordError where they do not add up)."""
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        prompt, completion = "prompt_tokens", "completion_tokens"
    elif "input_tokens" in usage or "output_tokens" in usage:
        prompt, completion = "input_tokens", "output_tokens"
    else:
        raise RecordError(INVALID_COUNTS, "'usage' has no token counts")
    in_details, out_details = _details_key(usage, prompt), _details_key(usage, completion)
    inputs, outputs = object_at(usage, in_details), object_at(usage, out_details)
    total_in = count_at(usage, prompt, f"usage.{prompt}")
    total_out = count_at(usage, completion, f"usage.{completion}")
    cached, cached_beside = _cache_reads(usage, inputs, in_details)
    written, written_beside = _cache_writes(usage, inputs, in_details)
    if "reasoning_tokens" in outputs or "reasoning_tokens" not in usage:
        reasoning = count_at(outputs, "reasoning_tokens", f"{out_details}.reasoning_tokens")
        reasoning_beside = reasoning_outside(usage, total_in, total_out, reasoning)
    else:  # Perplexity's
        reasoning, reasoning_beside = count_at(usage, "reasoning_tokens", "usage.reasoning_tokens"), True
    citations = count_at(usage, "citation_tokens", "usage.citation_tokens")
    if citations and total_in + citations > MAX_TOKENS:
        raise RecordError(INVALID_COUNTS, f"usage.{prompt} and usage.citation_tokens pass 10^9 together")
    total_in += citations
    counts = {
        **carve("input", total_in, {
            "cached_input": 0 if cached_beside else cached,
            "cache_write": 0 if written_beside else written,
            "input_audio": count_at(inputs, "audio_tokens", f"{in_details}.audio_tokens"),
            "input_image": count_at(inputs, "image_tokens", f"{in_details}.image_tokens"),
        }),
        **carve("output", total_out, {
            "reasoning": 0 if reasoning_beside else reasoning,
            "output_audio": count_at(outputs, "audio_tokens", f"{out_details}.audio_tokens"),
            "output_image": count_at(outputs, "image_tokens", f"{out_details}.image_tokens"),
        }),
    }
    for kind, tokens, beside in (("cached_input", cached, cached_beside), ("cache_write", written, written_beside),
                                 ("reasoning", reasoning, reasoning_beside)):
        if beside and tokens:
            counts[kind] = tokens
    return counts


def gateway_counts(prompt: int, completion: int, logged_response: Any) -> dict[str, int]:
    """A gateway's prompt and completion counts (Kong's, APISIX's), split as the provider response it logged beside
    them (JSON text) splits them, where that response is OpenAI-shaped with the same counts; else input and output
    whole. (A streamed response's text, or another call's, splits nothing.)"""
    if isinstance(logged_response, str):
        try:
            response = orjson.loads(logged_response)
        except orjson.JSONDecodeError:
            response = None
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict) and usage.get("prompt_tokens") == prompt and usage.get("completion_tokens") == completion:
            return openai_counts(usage)
    return {"input": prompt, "output": completion}


def _details_key(usage: dict[str, Any], count: str) -> str:
    """Where the breakdown of ``count`` is: `input_tokens_details` (Responses API, images), or, for the audio
    endpoints' usage (a transcription's), `input_token_details`, as the Realtime API spells it."""
    key = f"{count}_details"
    if key not in usage and count in SINGULAR_DETAILS and SINGULAR_DETAILS[count] in usage:
        return SINGULAR_DETAILS[count]
    return key


def reasoning_outside(usage: dict[str, Any], prompt: int, completion: int, reasoning: int) -> bool:
    """Whether the reasoning tokens are counted apart from the completion (xAI) rather than inside it (OpenAI):
    only the total can say so. Without it, reasoning past the completion is an error, not a guess."""
    total = usage.get("total_tokens")
    return reasoning > 0 and type(total) is int and total == prompt + completion + reasoning


def _cache_reads(usage: dict[str, Any], inputs: dict[str, Any], details: str) -> tuple[int, bool]:
    """(cache reads, whether they are outside the prompt's count)."""
    if inputs.get("cached_tokens") is not None:
        return count_at(inputs, "cached_tokens", f"{details}.cached_tokens"), False
    if "cache_read_input_tokens" in usage:  # LiteLLM's first releases: the prompt is Anthropic's input_tokens
        return count_at(usage, "cache_read_input_tokens", "usage.cache_read_input_tokens"), True
    if "cached_tokens" in usage:  # Kimi's, GLM's, MiniMax's: beside the details, inside the prompt
        return count_at(usage, "cached_tokens", "usage.cached_tokens"), False
    return count_at(usage, "prompt_cache_hit_tokens", "usage.prompt_cache_hit_tokens"), False


def _cache_writes(usage: dict[str, Any], inputs: dict[str, Any], details: str) -> tuple[int, bool]:
    """(cache writes, whether they are outside the prompt's count)."""
    for key in VENDOR_DETAIL_KEYS:
        if inputs.get(key) is not None:
            return count_at(inputs, key, f"{details}.{key}"), False
    return count_at(usage, "cache_creation_input_tokens", "usage.cache_creation_input_tokens"), True
