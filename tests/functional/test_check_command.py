"""`tokenmeter check`: a local log file read as count_tokens reads the same object from S3, nothing sent.
The expected figures are worked out by hand; the last test holds the preview against the function itself."""

from __future__ import annotations

import gzip
import json
import os

from conftest import LambdaContext, drain

from tokenmeter.cli.cli import main

CONFIG = {"default_subscription": "sub_default", "subscription_from": ["user", "requestMetadata.subscription_id"]}
OPENAI = {"id": "chatcmpl-0b7d4a459a532d7f3c8f9e10", "object": "chat.completion", "created": 1794744000,
          "model": "gpt-4o", "user": "sub_acme",
          "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 40}}}
BEDROCK = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-28T07:30:00Z",
           "requestId": "5f2a7c3e-0b7d-4a45-9a53-2d7f3c8f9e10", "operation": "Converse",
           "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0", "requestMetadata": {"subscription_id": "sub_globex"},
           "input": {"inputTokenCount": 30}, "output": {"outputTokenCount": 7}}
LINES = [json.dumps(OPENAI), "2026-11-28T07:30:01.000Z\tc6af9ac6\tINFO\t" + json.dumps(BEDROCK), "not json at all",
         json.dumps({"model": "gpt-4o", "object": "chat.completion.chunk", "id": "c", "choices": [], "usage": None})]


def run(capsys, monkeypatch, *argv) -> tuple[int, str, str]:
    monkeypatch.setenv("METERING_CONFIG", json.dumps(CONFIG))
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_gzip_log_file_is_billed_skipped_and_dead_lettered_as_count_tokens_would(capsys, monkeypatch, tmp_path):
    path = tmp_path / "app.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(LINES).encode()))
    code, out, _ = run(capsys, monkeypatch, "check", str(path), "--json")
    [report] = json.loads(out)
    assert code == 0 and report["file"] == str(path)
    assert (report["records"], report["metered"], report["events"]) == (4, 2, 5)
    # OpenAI: 100 prompt tokens of which 40 cached, 20 output; Bedrock: 30 in, 7 out.
    assert {(b["subscription"], b["model"], b["token_type"]): b["tokens"] for b in report["billed"]} == {
        ("sub_acme", "gpt-4o", "input"): 60, ("sub_acme", "gpt-4o", "cached_input"): 40,
        ("sub_acme", "gpt-4o", "output"): 20,
        ("sub_globex", "anthropic.claude-3-5-haiku-20241022-v1:0", "input"): 30,
        ("sub_globex", "anthropic.claude-3-5-haiku-20241022-v1:0", "output"): 7}
    assert report["skipped"] == {"stream_chunk": 1}
    assert [(d["reason"], d["source"]) for d in report["dead_letter_records"]] == [("malformed_json", f"{path}#line=3")]
    code, text, _ = run(capsys, monkeypatch, "check", str(path))
    assert code == 0 and f"{path}: 4 records, 2 billed as 5 usage events; skipped: stream_chunk 1; dead letters: " \
                         "malformed_json 1" in text
    assert "malformed_json" in text and f"{path}#line=3" in text


def test_a_missing_file_or_a_folder_is_a_clear_error(capsys, monkeypatch, tmp_path):
    code, out, err = run(capsys, monkeypatch, "check", str(tmp_path / "nowhere.jsonl"))
    assert code == 2 and out == "" and "nowhere.jsonl: no such file" in err
    code, out, err = run(capsys, monkeypatch, "check", str(tmp_path))
    assert code == 2 and out == "" and "not a file this user can read" in err


def test_the_preview_bills_what_count_tokens_bills_for_the_same_object(count_tokens, aws, capsys, monkeypatch,
                                                                        tmp_path):
    body = "\n".join(LINES).encode()
    path = tmp_path / "app.jsonl"
    path.write_bytes(body)
    _, out, _ = run(capsys, monkeypatch, "check", str(path), "--json")
    previewed = {(b["subscription"], b["model"], b["token_type"]): b["tokens"] for b in json.loads(out)[0]["billed"]}
    aws.s3.put_object(Bucket="inference-logs", Key="logs/app.jsonl", Body=body)
    count_tokens._settings = None
    count_tokens.lambda_handler({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "inference-logs"}, "object": {"key": "logs/app.jsonl", "size": len(body)}}}]},
        LambdaContext())
    billed: dict = {}
    for sent in drain(aws.sqs, aws.usage_url):
        for event in sent["events"]:
            key = (event["external_subscription_id"], event["properties"]["model"], event["properties"]["token_type"])
            billed[key] = billed.get(key, 0) + event["properties"]["tokens"]
    assert billed == previewed and len(billed) == 5


def test_a_file_a_windows_tool_wrote_with_a_byte_order_mark_reads_as_without_it(capsys, monkeypatch, tmp_path):
    # A pretty-printed document, plain and gzipped, and JSON Lines: the mark is no part of the first record.
    bodies = {"doc.json": json.dumps(OPENAI, indent=2).encode(), "doc.json.gz": gzip.compress(
        b"\xef\xbb\xbf" + json.dumps(OPENAI, indent=2).encode()), "lines.jsonl": "\n".join(LINES[:2]).encode()}
    for name, body in bodies.items():
        path = tmp_path / name
        path.write_bytes(body if name.endswith(".gz") else b"\xef\xbb\xbf" + body)
        code, out, _ = run(capsys, monkeypatch, "check", str(path), "--json")
        [report] = json.loads(out)
        assert code == 0 and report["dead_letters"] == {}, (name, report)
        assert report["metered"] == (2 if name == "lines.jsonl" else 1), name


def test_output_cut_short_by_its_reader_is_no_traceback(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "app.jsonl"
    path.write_text("\n".join(LINES))
    env = {**os.environ, "METERING_CONFIG": json.dumps(CONFIG)}
    # A reader that takes nothing and goes (as `| head -0` does): the output meets a closed pipe.
    command = "import sys; from tokenmeter.cli.cli import main; sys.exit(main())"
    child = subprocess.Popen([sys.executable, "-c", command, "check", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait() == 1 and "Traceback" not in stderr, stderr
