"""Gemini and Vertex AI `generateContent` responses: `usageMetadata` split into disjoint token types.

promptTokenCount includes the cached tokens; toolUsePromptTokenCount and thoughtsTokenCount are counted
beside prompt and candidates (totalTokenCount is the sum of all four). The per-modality details split
each count again: AUDIO and IMAGE get their own types, TEXT, VIDEO and DOCUMENT stay in input/output
(Gemini prices video and documents as it prices text). A response streamed chunk by chunk repeats its
responseId with the counts so far: only the chunk with a finishReason, the last, is billed. The Google GenAI
SDK's own objects, dumped or printed by an app, carry the same fields in snake_case, and so do Google ADK's
events (`partial` ones, a streamed turn's chunks, are not final). The Live API's server messages carry a turn's
usage with the response's count named `responseTokenCount`.
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, carve, count_at, id_at, list_at, model_at, rfc3339_at, with_counts
from .records import INVALID_COUNTS, INVALID_RECORD, NOT_FINAL, Inference, RecordError

_MODALITY_TYPES = {"AUDIO": "audio", "IMAGE": "image"}
_SDK_COUNTS = ("prompt_token_count", "candidates_token_count", "total_token_count", "thoughts_token_count")


def is_gemini(data: dict[str, Any]) -> bool:
    return isinstance(data.get("usageMetadata"), dict)


def gemini_from_sdk(data: dict[str, Any]) -> dict[str, Any] | None:
    """A response as the Google GenAI SDK gives it to an app that logs `response.model_dump()` (or prints it):
    its fields in snake_case (`usage_metadata.prompt_token_count`), here in the API's camelCase as read_gemini
    reads them; None for any other record (LangChain's `usage_metadata` holds input_tokens)."""
    usage = data.get("usage_metadata")
    if not isinstance(usage, dict) or usage.keys().isdisjoint(_SDK_COUNTS):
        return None
    record = _camel(data)
    record["usageMetadata"] = {_camel_key(key): [_camel(item) for item in value] if isinstance(value, list) else value
                               for key, value in usage.items()}
    candidates = data.get("candidates")
    if isinstance(candidates, list):
        record["candidates"] = [_camel(candidate) for candidate in candidates]
    return record


def _camel(value: Any) -> Any:
    """A dict's keys in camelCase (one level: what read_gemini reads lies no deeper)."""
    return {_camel_key(key): item for key, item in value.items()} if isinstance(value, dict) else value


def _camel_key(key: Any) -> Any:
    if not isinstance(key, str) or "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def read_gemini(data: dict[str, Any]) -> Inference:
    if data.get("partial") is True:
        # Google ADK's events of a streamed turn: each partial one repeats its chunk's counts so far; the turn's
        # aggregated event (not partial) carries the last, and bills.
        raise NothingToBill(NOT_FINAL)
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and not any(
            isinstance(c, dict) and c.get("finishReason") for c in candidates):
        # A streamed chunk before the last: its usageMetadata is the count so far, under the response's id.
        raise NothingToBill(NOT_FINAL)
    usage = data["usageMetadata"]
    model = _model_name(model_at(data, "modelVersion") if "modelVersion" in data else model_at(data, "model"))
    prompt = count_at(usage, "promptTokenCount", "usageMetadata.promptTokenCount")
    tool_use = count_at(usage, "toolUsePromptTokenCount", "usageMetadata.toolUsePromptTokenCount")
    cached = count_at(usage, "cachedContentTokenCount", "usageMetadata.cachedContentTokenCount")
    # The Live API's messages name the same count responseTokenCount (and its details responseTokensDetails).
    response = "candidates" if "candidatesTokenCount" in usage or "responseTokenCount" not in usage else "response"
    candidates = count_at(usage, f"{response}TokenCount", f"usageMetadata.{response}TokenCount")
    thoughts = count_at(usage, "thoughtsTokenCount", "usageMetadata.thoughtsTokenCount")
    if cached > prompt:
        raise RecordError(INVALID_COUNTS, f"cachedContentTokenCount {cached} exceeds promptTokenCount {prompt}")
    # Modality tokens that were not read from the cache (the cache's own split is cacheTokensDetails).
    prompt_split = _modalities(usage, "promptTokensDetails")
    cache_split = _modalities(usage, "cacheTokensDetails")
    tool_split = _modalities(usage, "toolUsePromptTokensDetails")
    inputs = {
        "cached_input": cached,
        **{f"input_{kind}": prompt_split.get(kind, 0) - cache_split.get(kind, 0) + tool_split.get(kind, 0)
           for kind in _MODALITY_TYPES.values()},
    }
    for kind, tokens in inputs.items():
        if tokens < 0:
            raise RecordError(INVALID_COUNTS, f"cacheTokensDetails reports more {kind[6:]} tokens than "
                                              "promptTokensDetails")
    output_split = _modalities(usage, f"{response}TokensDetails")
    outputs = {"reasoning": thoughts, **{f"output_{kind}": output_split.get(kind, 0) for kind in _MODALITY_TYPES.values()}}
    counts = {**carve("input", prompt + tool_use, inputs), **carve("output", candidates + thoughts, outputs)}
    timestamp = rfc3339_at(data, "createTime") if "createTime" in data else None
    return with_counts(model, id_at(data, "responseId"), timestamp, counts)


def _modalities(usage: dict[str, Any], key: str) -> dict[str, int]:
    """A details list ([{modality, tokenCount}]) as tokens per audio/image type; other modalities dropped."""
    split: dict[str, int] = {}
    for i, detail in enumerate(list_at(usage, key, f"usageMetadata.{key}")):
        if not isinstance(detail, dict) or not isinstance(detail.get("modality", ""), str):
            raise RecordError(INVALID_RECORD, f"usageMetadata.{key}[{i}] must be an object with a string modality")
        kind = _MODALITY_TYPES.get(detail.get("modality", ""))
        tokens = count_at(detail, "tokenCount", f"usageMetadata.{key}[{i}].tokenCount")
        if kind is not None:
            split[kind] = split.get(kind, 0) + tokens
    return split


def _model_name(name: str) -> str:
    """The model as the online API names it: Vertex AI's batch output says `gemini-2.0-flash-001@default` (the
    model's default version, the one the online call gets) and at times the publisher's resource path
    (`publishers/google/models/...`); billed under those names, a price filter on the model misses them. Any other
    version after `@` (Anthropic's on Vertex: `claude-3-5-sonnet-v2@20241022`) is part of the name."""
    if "/models/" in name or name.startswith("models/"):
        name = name.rpartition("models/")[2] or name
    if name.endswith("@default") and len(name) > len("@default"):
        name = name[:-len("@default")]
    return name
