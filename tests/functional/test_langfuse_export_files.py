"""Langfuse's blob storage export through count_tokens: the files one run writes to S3 (gzipped JSONL, or a JSON
array, or CSV, or Parquet as ClickHouse writes it) under `<project>/observations_v2/`, `observations/` (the legacy source, whose rows name no user: attributed by
the observation's metadata) and `manifests/`. Counts worked out by hand in tests/unit/test_langfuse_exports.py."""

import gzip
import json
from pathlib import Path

from conftest import LambdaContext, drain, event_totals, events_on, s3_event

TRACE = "0af7651916cd43dd8448eb211c80319c"
RUN = "2026-11-20T11-00-00"
PARQUET = Path(__file__).parent.parent / "fixtures" / "langfuse_observations_v2.parquet"


def observation(observation_id: str, kind: str, usage: dict, model: str, **more) -> dict:
    return {"id": observation_id, "trace_id": TRACE, "project_id": "cm1proj", "environment": "default", "type": kind,
            "start_time": "2026-11-20 10:15:02.120000", "end_time": "2026-11-20 10:15:04.905000", "name": kind.lower(),
            "metadata": {"customer": "sub_42"}, "level": "DEFAULT", "provided_model_name": model,
            "usage_details": {key: str(n) for key, n in usage.items()}, "total_cost": 0.01, **more}


ROWS = [observation("a1", "AGENT", {"input": 4574, "output": 730, "total": 5304}, "", parent_observation_id=""),
        observation("g1", "GENERATION", {"input": 1200, "input_cached_tokens": 800, "output": 310, "total": 2310},
                    "gpt-4o-2024-08-06", parent_observation_id="a1"),
        observation("g2", "GENERATION", {"input": 12, "cache_read_input_tokens": 4000,
                                         "cache_creation_input_tokens": 150, "output": 420, "total": 4582},
                    "claude-sonnet-4-20250514", parent_observation_id="a1"),
        observation("t1", "TOOL", {}, "", parent_observation_id="a1")]
TOTALS = {"input": 1200 + 12, "cached_input": 800 + 4000, "cache_write": 150, "output": 310 + 420}


def enriched(row: dict) -> dict:
    return {**row, "user_id": "sub_42", "session_id": "s-1", "trace_name": "support", "tags": [], "release": ""}


def put_and_meter(count_tokens, aws, key: str, body: bytes) -> dict:
    aws.s3.put_object(Bucket="inference-logs", Key=key, Body=body)
    return count_tokens.lambda_handler(s3_event(key), LambdaContext())


def test_one_export_run_bills_each_generation_once(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id", "metadata.customer"]}))
    v2 = gzip.compress("\n".join(json.dumps(enriched(row)) for row in ROWS).encode())
    legacy = json.dumps([{**row, "parent_observation_id": row["parent_observation_id"] or None} for row in ROWS])
    manifest = {"version": 1, "projectId": "cm1proj", "exportSource": "LEGACY_TRACES_AND_ENRICHED_OBSERVATIONS",
                "window": {"minTimestamp": "2026-11-20T10:00:00.000Z", "maxTimestamp": "2026-11-20T11:00:00.000Z"},
                "maxTimestamp": "2026-11-20T11:00:00.000Z", "createdAt": "2026-11-20T11:04:12.000Z",
                "tables": ["observations_v2", "observations"], "files": []}
    first = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations_v2/{RUN}.jsonl.gz", v2)
    assert first["metered"] == 2 and first["skipped"] == {"aggregate_span": 1, "no_usage": 1}
    enriched_events = events_on(aws)
    assert event_totals(enriched_events) == TOTALS

    # The mixed source writes the same observations again in the legacy file: the same events, one bill downstream.
    second = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations/{RUN}.json", legacy.encode())
    assert second["metered"] == 2
    legacy_events = events_on(aws)
    assert sorted(legacy_events, key=lambda e: e["transaction_id"]) == sorted(enriched_events,
                                                                              key=lambda e: e["transaction_id"])

    third = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/manifests/{RUN}.json", json.dumps(manifest).encode())
    assert third["metered"] == 0 and third["skipped"] == {"no_usage": 1}
    assert drain(aws.sqs, aws.usage_url) == [] and drain(aws.sqs, aws.dead_url) == []


def assert_bills_as_its_jsonl(count_tokens, aws, rows: list[dict], name: str, body: bytes) -> None:
    """``body``, the export file ``name`` holding ``rows``, bills the same events as the gzipped JSONL of the rows:
    the two generations, the agent's sum skipped, the tool's empty usage skipped, no letter."""
    put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations_v2/{RUN}.jsonl.gz",
                  gzip.compress("\n".join(json.dumps(row) for row in rows).encode()))
    from_jsonl = events_on(aws)
    summary = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations_v2/{name}", body)
    assert summary["metered"] == 2 and summary["skipped"] == {"aggregate_span": 1, "no_usage": 1}
    from_file = events_on(aws)
    assert event_totals(from_file) == TOTALS
    assert sorted(from_file, key=lambda e: e["transaction_id"]) == sorted(from_jsonl, key=lambda e: e["transaction_id"])
    assert drain(aws.sqs, aws.dead_url) == []


def test_a_parquet_export_bills_as_its_jsonl_does(count_tokens, aws, monkeypatch):
    # ClickHouse's own writer made the file (tests/fixtures/make_langfuse_parquet.py), from ROWS, enriched.
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id", "metadata.customer"]}))
    assert_bills_as_its_jsonl(count_tokens, aws, [enriched(row) for row in ROWS], f"{RUN}.parquet", PARQUET.read_bytes())


def test_a_json_export_past_the_record_limit_bills_every_observation(count_tokens, aws, monkeypatch):
    # Langfuse writes a JSON export as one array on one line (transformStreamToJson): an hour of a busy project's
    # observations with their prompts passes max_record_bytes (16 MiB); here the limits are made small instead.
    limits = {"max_record_bytes": 2048, "max_document_bytes": 4096}
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id", "metadata.customer"], **limits}))
    rows = [enriched({**row, "input": "a prompt " * 100}) for row in ROWS]
    export = json.dumps(rows, separators=(",", ":")).encode()
    assert len(export) > 4096
    assert_bills_as_its_jsonl(count_tokens, aws, rows, f"{RUN}.json.gz", gzip.compress(export))


def langfuse_csv(rows: list[dict]) -> bytes:
    """The file Langfuse writes with its file type set to CSV (transformStreamToCsv, stringifyForCsv): the first
    row's keys as the header, every field quoted, a string as it is, null as nothing, anything else as JSON."""
    def field(value) -> str:
        text = "" if value is None else value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                                                         ensure_ascii=False)
        return '"' + text.replace('"', '""') + '"'

    names = list(rows[0])
    return "".join(",".join(field(row.get(name)) for name in names) + "\n" for row in [dict(zip(names, names))] + rows
                   ).encode()


def test_a_csv_export_bills_as_its_jsonl_does(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id", "metadata.customer"]}))
    texts = {"input": '[{"role":"user","content":"Summarise, in two lines:\n\"the report\""}]',
             "output": "Line one, with a comma.\nLine two — «quoted» \"text\".", "completion_start_time": None}
    # An OpenTelemetry span's id is 16 hex digits; these happen to be decimal ones, and stay an id.
    rows = [enriched({**row, **texts, **({"id": "5081729364512873"} if row["id"] == "g1" else {})}) for row in ROWS]
    assert_bills_as_its_jsonl(count_tokens, aws, rows, f"{RUN}.csv.gz", gzip.compress(langfuse_csv(rows)))


def test_a_parquet_file_that_cannot_be_read_is_one_dead_letter_that_says_why(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id"]}))
    whole = PARQUET.read_bytes()
    damaged = whole[:200] + bytes(300) + whole[500:]  # the first columns' pages overwritten
    summary = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations_v2/{RUN}.parquet", damaged)
    assert summary["dead_letters"] == {"decode_error": 1} and summary["metered"] == 0
    [letter] = drain(aws.sqs, aws.dead_url)
    assert letter["source"].endswith(".parquet") and "row group 0" in letter["detail"]


def test_a_parquet_file_past_the_document_limit_is_one_letter_that_names_the_setting(count_tokens, aws, monkeypatch):
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"subscription_from": ["user_id"], "max_document_bytes": 4096}))
    summary = put_and_meter(count_tokens, aws, f"langfuse/cm1proj/observations_v2/{RUN}.parquet", PARQUET.read_bytes())
    assert summary["dead_letters"] == {"object_too_large": 1} and summary["metered"] == 0
    [letter] = drain(aws.sqs, aws.dead_url)
    assert "max_document_bytes" in letter["detail"]
