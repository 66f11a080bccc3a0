"""Replicate's predictions, as an app logs the prediction object its API or SDK returns (or a webhook posts).

Replicate prices its official language models per token and reports the counts it bills in the prediction's
`metrics`: `input_token_count` and `output_token_count` (beside `predict_time`, `time_to_first_token`, ...).
A prediction is logged as it goes (a webhook posts it at start, on output and at the end): only its final
state bills, under its own `id`, so the same prediction logged at several stages or by two loggers bills once.
- `starting`, `processing`: not final (`not_final`);
- `failed`, `aborted`: the prediction did not complete (`failed_request`);
- `succeeded`, `canceled`: the tokens its metrics report (a canceled one reports what ran before the cancel);
- a model billed by time (images, audio, most community models) has no token counts: `no_usage`.
"""

from __future__ import annotations

from typing import Any

from .batches import FAILED_REQUEST
from .fields import NothingToBill, count_at, id_at, model_at, rfc3339_at, with_counts
from .records import INVALID_RECORD, NO_USAGE, NOT_FINAL, Inference, RecordError

_RUNNING = frozenset(("starting", "processing"))
_FAILED = frozenset(("failed", "aborted"))
_ENDED = frozenset(("succeeded", "canceled"))
_TOKEN_METRICS = ("input_token_count", "output_token_count")


def is_replicate(data: dict[str, Any]) -> bool:
    """A prediction object: its `metrics`, a status of Replicate's, and the `version` or `urls` every one has."""
    status = data.get("status")
    return (isinstance(data.get("metrics"), dict) and isinstance(status, str) and status in _RUNNING | _FAILED | _ENDED
            and ("version" in data or "urls" in data))


def read_replicate(data: dict[str, Any]) -> Inference:
    status, metrics = data["status"], data["metrics"]
    if status in _RUNNING:
        raise NothingToBill(NOT_FINAL)
    if status in _FAILED:
        raise NothingToBill(FAILED_REQUEST)
    if not any(key in metrics for key in _TOKEN_METRICS):
        raise NothingToBill(NO_USAGE)  # billed by the second, not by the token
    if not isinstance(data.get("model"), str):
        raise RecordError(INVALID_RECORD, "a Replicate prediction with token counts must name its 'model'")
    counts = {"input": count_at(metrics, "input_token_count", "metrics.input_token_count"),
              "output": count_at(metrics, "output_token_count", "metrics.output_token_count")}
    when = "completed_at" if data.get("completed_at") is not None else "created_at"
    return with_counts(model_at(data, "model"), id_at(data, "id"), rfc3339_at(data, when), counts)
