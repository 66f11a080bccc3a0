"""Replicate's prediction objects as an app logs them: the shape from Replicate's HTTP API reference (the
prediction object, its statuses) and Cog's metrics for official language models (`input_token_count`,
`output_token_count`); expected counts worked out by hand."""

import pytest
from conftest import meter_lines

from tokenmeter.metering.formats import NothingToBill, read_inference
from tokenmeter.metering.records import RecordError

PREDICTION = {
    "id": "gm3qorzdhgbfurvjtvhg6dckhu", "model": "meta/meta-llama-3-70b-instruct",
    "version": "fbfb20b472b2f3bdd101412a9f70a0ed4fc0ced78a77ff00970ee7a2383c575d",
    "input": {"prompt": "Write a limerick about llamas"}, "logs": "", "output": ["There ", "once ", "was"],
    "data_removed": False, "error": None, "source": "api", "status": "succeeded",
    "created_at": "2024-03-12T14:43:25.883Z", "started_at": "2024-03-12T14:43:26.012Z",
    "completed_at": "2024-03-12T14:43:27.374183Z",
    "urls": {"cancel": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu/cancel",
             "get": "https://api.replicate.com/v1/predictions/gm3qorzdhgbfurvjtvhg6dckhu"},
    "metrics": {"input_token_count": 8, "output_token_count": 43, "predict_time": 1.362, "time_to_first_token": 0.21,
                "tokens_per_second": 33.1, "total_time": 1.491},
}


def test_a_finished_prediction_bills_its_token_metrics_at_its_completion():
    inference = read_inference(PREDICTION)
    # 2024-03-12T14:43:27.374Z = 1710254607.374 s
    assert (inference.model, inference.request_id, inference.timestamp_ms, inference.counts) == (
        "meta/meta-llama-3-70b-instruct", "gm3qorzdhgbfurvjtvhg6dckhu", 1710254607374, {"input": 8, "output": 43})


def test_a_canceled_prediction_bills_what_ran():
    canceled = {**PREDICTION, "status": "canceled", "metrics": {"input_token_count": 8, "output_token_count": 5}}
    assert read_inference(canceled).counts == {"input": 8, "output": 5}


@pytest.mark.parametrize(("status", "reason"), [("starting", "not_final"), ("processing", "not_final"),
                                                ("failed", "failed_request"), ("aborted", "failed_request")])
def test_a_prediction_that_has_not_finished_or_did_not_complete_bills_nothing(status, reason):
    record = {**PREDICTION, "status": status, "completed_at": None}
    with pytest.raises(NothingToBill, match=reason):
        read_inference(record)


def test_a_model_billed_by_the_second_has_no_tokens():
    image = {**PREDICTION, "model": "black-forest-labs/flux-schnell", "metrics": {"predict_time": 0.9, "image_count": 1}}
    with pytest.raises(NothingToBill, match="no_usage"):
        read_inference(image)


def test_counts_without_a_model_or_of_the_wrong_type_are_clear_errors():
    nameless = {key: value for key, value in PREDICTION.items() if key != "model"}
    with pytest.raises(RecordError, match="must name its 'model'"):
        read_inference(nameless)
    with pytest.raises(RecordError, match="metrics.output_token_count must be a whole number") as error:
        read_inference({**PREDICTION, "metrics": {"input_token_count": 8, "output_token_count": 4.5}})
    assert error.value.reason == "invalid_counts"


def test_the_same_prediction_logged_at_each_webhook_bills_once():
    started = {**PREDICTION, "status": "starting", "output": None, "completed_at": None, "metrics": {}}
    summary, sink = meter_lines([started, PREDICTION, PREDICTION], {"default_subscription": "sub_1"})
    assert summary.skipped["not_final"] == 1 and not sink.dead_letters
    assert len({e.transaction_id for e in sink.events}) == 2  # input and output, the same ids each time
    assert sorted((e.properties["token_type"], e.properties["tokens"]) for e in sink.events[:2]) == [
        ("input", 8), ("output", 43)]


def test_a_status_that_is_not_a_string_is_no_prediction():
    with pytest.raises(RecordError) as error:
        read_inference({**PREDICTION, "status": {"phase": "succeeded"}})
    assert error.value.reason == "unknown_format"
