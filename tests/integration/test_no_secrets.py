"""No secret reaches a log line, an error, a metric, a response or a dead letter: a whole run with
known secrets (NATS password from Secrets Manager, Lago API key, HTTP API keys), including the
failures that tend to print them (wrong keys, refused requests), and everything it wrote searched."""

import json
import logging
import sys

import pytest
from conftest import (
    LAGO_NOW,
    LambdaContext,
    cloudwatch_event,
    drain,
    http_api_event,
    seed_per_token_plan,
    stream_messages,
)

from local.functions import load_function_app
from local.lago_emulator.process import LagoEmulatorProcess
from local.nats_server import NatsServer
from tokenmeter.cli.cli import main as tokenmeter
from tokenmeter.core.aws import reset_clients

NATS_PASSWORD = "nats-pw-Zq81xKd03Lm"
LAGO_KEY = "lago-key-Wn47sPq92Hv"
WRONG_LAGO_KEY = "lago-key-wrong-Tr55Yb"
HTTP_KEY = "http-key-Pk29Ue61Jx0"
WRONG_HTTP_KEY = "http-key-guess-Aa11Bb22"
SECRETS = [NATS_PASSWORD, LAGO_KEY, WRONG_LAGO_KEY, HTTP_KEY, WRONG_HTTP_KEY]


@pytest.fixture
def stack(aws, count_tokens, tmp_path, monkeypatch):
    import boto3

    nats = NatsServer(tmp_path / "js", config=f'authorization {{ user: "metering", password: "{NATS_PASSWORD}" }}').start()
    lago = LagoEmulatorProcess(tmp_path / "lago", api_key=LAGO_KEY, now=LAGO_NOW).start()
    arn = boto3.client("secretsmanager").create_secret(
        Name="tokenmeter/nats", SecretString=json.dumps({"user": "metering", "password": NATS_PASSWORD}))["ARN"]
    for key, value in {"NATS_URL": nats.url, "NATS_CREDS_SECRET_ARN": arn, "LAGO_API_URL": lago.url,
                       "LAGO_API_KEY": WRONG_LAGO_KEY, "LAGO_SYNC_RETRY_MAX_SECONDS": "0.05",
                       "HTTP_API_KEY": json.dumps({"acme-app": {"key": HTTP_KEY, "subscriptions": ["sub_acme"]}}),
                       "POWERTOOLS_LOG_LEVEL": "DEBUG"}.items():
        monkeypatch.setenv(key, value)
    apps = {name: load_function_app(name) for name in ("publish_event", "publish_http", "lago_sync")}
    for app in apps.values():
        monkeypatch.setattr(app, "_runtime", None)
    reset_clients()
    yield apps, nats, lago
    for app in apps.values():
        runtime = app._runtime
        if runtime is not None:
            connection = (runtime[0] if isinstance(runtime, tuple) else runtime).nats
            connection.run(connection.close())
            connection.loop.close()
    lago.stop()
    nats.stop()


def http(body, key):
    return http_api_event(body, headers={"x-api-key": key})


def test_a_full_run_prints_and_stores_no_secret(stack, aws, count_tokens, capfd, monkeypatch):
    from lago_python_client.client import Client

    apps, nats, lago = stack
    for handler in _stream_handlers():  # Powertools' loggers keep the stdout they were made with
        handler.stream = sys.stdout  # not setStream: it would flush the old, maybe closed, stream
    kept = KeepRecords()  # child loggers with no service name reach only the root: keep theirs, extras included
    logging.getLogger().addHandler(kept)
    seen: list[str] = []  # everything the run returned, besides what it printed
    batch = cloudwatch_event([
        json.dumps({"id": "chatcmpl-000000000000000000001", "created": 1794744000, "model": "gpt-4o", "user": "sub_acme",
                    "usage": {"prompt_tokens": 30, "completion_tokens": 5}}),
        json.dumps({"id": "chatcmpl-000000000000000000002", "created": 1794744000, "model": "gpt-4o",
                    "usage": {"prompt_tokens": 30, "completion_tokens": 5}})])  # unattributed: a dead letter
    seen.append(json.dumps(count_tokens.lambda_handler(batch, LambdaContext())))
    bodies = drain(aws.sqs, aws.usage_url)
    records = [{"messageId": str(i), "body": json.dumps(b), "eventSource": "aws:sqs"} for i, b in enumerate(bodies)]
    seen.append(json.dumps(apps["publish_event"].lambda_handler({"Records": records}, LambdaContext())))
    event = {"transaction_id": "http-0001-input", "external_subscription_id": "sub_acme", "code": "llm_tokens",
             "timestamp": "1794744000.000", "properties": {"tokens": 9, "model": "gpt-4o", "token_type": "input"}}
    for body, key in ((event, HTTP_KEY), (event, WRONG_HTTP_KEY), ({**event, "external_subscription_id": "sub_x"},
                                                                    HTTP_KEY), ("{not json", HTTP_KEY)):
        seen.append(json.dumps(apps["publish_http"].lambda_handler(http(body, key), LambdaContext())))

    seed_per_token_plan(Client(api_key=LAGO_KEY, api_url=lago.url), {"sub_acme": "acme"})
    from tokenmeter.shipping.lago_api import LagoAuthError

    with pytest.raises(LagoAuthError) as refused:  # a wrong Lago key: Lago answers 401, the invocation fails
        apps["lago_sync"].lambda_handler({}, LambdaContext())
    monkeypatch.setenv("LAGO_API_KEY", LAGO_KEY)  # fixed, and the function's environment renewed
    old = apps["lago_sync"]._runtime
    old.nats.run(old.nats.close())
    old.nats.loop.close()
    monkeypatch.setattr(apps["lago_sync"], "_runtime", None)
    runs = []
    while not runs or runs[-1]["pending"]:  # the refused events come back after their retry delay
        runs.append(apps["lago_sync"].lambda_handler({}, LambdaContext()))
        assert len(runs) < 20, runs[-1]
    assert sum(r["shipped"] + r["already_billed"] for r in runs) == 3, runs  # a slow answer may land as already held
    seen += [str(refused.value), *map(json.dumps, runs)]
    assert tokenmeter(["status", "--json"]) == 0 and tokenmeter(["usage", "sub_acme"]) == 0
    monkeypatch.setenv("NATS_CREDS_SECRET_ARN", "")  # and a refused NATS connection
    assert tokenmeter(["status"]) == 1

    seen += [json.dumps(d) for d in drain(aws.sqs, aws.dead_url)]
    for stream in ("USAGE", "USAGE_DLQ"):
        seen += [f"{m.headers} {m.data!r}" for m in stream_messages(f"nats://metering:{NATS_PASSWORD}@127.0.0.1:"
                                                                    f"{nats.port}", stream)]
    out, err = capfd.readouterr()
    logging.getLogger().removeHandler(kept)
    everything = "\n".join([out, err, *seen, *kept.records])
    # The run did meet each failure (so the search below had something to find).
    for expected in ("lago_sync run", "unauthorized", "forbidden_subscription", "unattributed", "invalid_json",
                     "Authorization Violation", "Lago refused the API key (401)"):
        assert expected in everything, expected
    for secret in SECRETS:
        assert secret not in everything, f"{secret[:9]}... appears in the output"



class KeepRecords(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.getMessage()} {record.__dict__!r}")


def _stream_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
    return [h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler]
