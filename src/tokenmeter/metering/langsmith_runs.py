"""LangSmith's runs: what its API returns for a run (`Client.list_runs()` / `read_run()`, the objects of
`POST /runs/query`, written out as JSON, one by one or a page of its answer) and the rows of its bulk export
(Parquet in S3: the same fields, its objects possibly as JSON text).

A run is one step of a trace: `id`, `trace_id`, `run_type` (llm, chain, tool, retriever, embedding, prompt,
parser), `start_time`, `end_time`, `status`, `extra` (its `metadata`, where LangChain puts `ls_model_name`, and
its `invocation_params`), and the tokens LangSmith recorded in LangChain's convention (`prompt_tokens` and
`completion_tokens` holding their `prompt_token_details` / `completion_token_details`: cache reads and writes,
audio; reasoning, audio: langchain.py's reading). Only `llm` runs are model calls: LangSmith gives a chain or agent
run the sum of its calls' tokens, which would bill them twice (`aggregate_span`). A run not yet ended is
`not_final`. Identity: the run's id; time: its end. Model: `ls_model_name` in its metadata, else the model its
invocation parameters or inputs name (LangSmith's own order for pricing).
"""

from __future__ import annotations

from typing import Any

from .fields import NothingToBill, model_at, objects_read_back, page_items, rfc3339_at, short, unix_ms_at, with_counts
from .langchain import usage_metadata_counts
from .otlp import AGGREGATE_SPAN
from .records import INVALID_COUNTS, INVALID_RECORD, INVALID_TIMESTAMP, NO_USAGE, NOT_FINAL, Inference, RecordError

_RUN_TYPES = frozenset({"llm", "chain", "tool", "retriever", "embedding", "prompt", "parser"})
_TOKENS = ("prompt_tokens", "completion_tokens", "prompt_token_details", "completion_token_details")
# (Its `inputs`, the prompt, are read back only when they must name the model: they can be large.)
_JSON_FIELDS = ("extra", "metadata", "prompt_token_details", "completion_token_details")


def langsmith_run(data: dict[str, Any]) -> dict[str, Any] | None:
    """The run ``data`` is, its objects that an export wrote as JSON text read back (so that attribution reaches
    `extra.metadata`), else None."""
    kind = data.get("run_type")
    if type(kind) is not str or kind not in _RUN_TYPES or type(data.get("id")) is not str or "start_time" not in data:
        return None
    if not ("trace_id" in data or "dotted_order" in data or "session_id" in data):
        return None
    return objects_read_back(data, _JSON_FIELDS)


def api_runs(data: dict[str, Any]) -> list[Any] | None:
    """The runs of a page of the API's answer (`POST /runs/query`: `{"runs": [...], "cursors": {...}}`), else None."""
    return page_items(data, "runs", langsmith_run)


def read_run(run: dict[str, Any]) -> Inference:
    has_tokens = any(run.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if run["run_type"] != "llm":
        raise NothingToBill(AGGREGATE_SPAN if has_tokens else NO_USAGE)
    if run.get("end_time") is None or run.get("status") == "pending":
        raise NothingToBill(NOT_FINAL)
    if not has_tokens:
        raise NothingToBill(NO_USAGE)
    if not (run.get("prompt_tokens") or run.get("completion_tokens")):
        raise RecordError(INVALID_COUNTS, f"total_tokens {short(run.get('total_tokens'))} without the prompt_tokens and "
                                          "completion_tokens it adds up (no token type to bill them as)")
    counts = usage_metadata_counts({key: run.get(key) for key in _TOKENS}, "run", _TOKENS)
    return with_counts(_model(run), run["id"], _end_ms(run), {kind: n for kind, n in counts.items() if n})


def _model(run: dict[str, Any]) -> str:
    extra = run.get("extra") if type(run.get("extra")) is dict else {}
    params = extra.get("invocation_params") if type(extra.get("invocation_params")) is dict else {}
    for holder in (run.get("metadata"), extra.get("metadata")):
        if type(holder) is dict and holder.get("ls_model_name"):
            return model_at(holder, "ls_model_name")
    for key in ("model", "model_name"):
        if params.get(key):
            return model_at(params, key)
    inputs = objects_read_back(run, ("inputs",)).get("inputs")
    for key in ("model", "model_name"):
        if type(inputs) is dict and inputs.get(key):
            return model_at(inputs, key)
    raise RecordError(INVALID_RECORD, "an llm run that names no model (extra.metadata.ls_model_name, "
                                      "extra.invocation_params.model, inputs.model)")


def _end_ms(run: dict[str, Any]) -> int | None:
    # The API writes RFC 3339 text (UTC, often without an offset); LangSmith's JavaScript SDK milliseconds.
    if type(run["end_time"]) in (int, float):
        return unix_ms_at(run, "end_time")
    if type(run["end_time"]) is str:
        return rfc3339_at(run, "end_time")
    raise RecordError(INVALID_TIMESTAMP, f"'end_time' must be an RFC 3339 time, got {short(run['end_time'])}")
