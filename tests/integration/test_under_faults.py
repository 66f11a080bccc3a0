"""Nothing lost, nothing billed twice: a generated workload through all three functions while
triggers are re-delivered, invocations fail part-way, nats-server is killed and Lago misbehaves,
on each of Lago's event stores (Postgres; ClickHouse with dedup on and usage that lags).

Subscription and customer ids carry the characters Lago's paths must have encoded; most customers are
billed monthly by calendar in UTC, every fifth weekly on its anniversary in Tokyo, so only that week's
usage is billable for them and the rest of their usage is reported as unbillable.

The ground truth comes from local/workload.py, which chose every count (text-only records are
counted by tiktoken, an independent tokenizer); the billing periods below are worked out by hand.
TOKENMETER_E2E_RECORDS sets the size (default 5,000).
"""

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from urllib.parse import quote

import httpx
import pytest
from botocore.exceptions import ClientError
from conftest import LAGO_NOW, LambdaContext, drain, stream_messages

from local.functions import load_function_app
from local.lago_emulator.process import LagoEmulatorProcess
from local.workload import (
    BAD_MARKER,
    GHOST,
    Workload,
    cloudwatch_event,
    customer_of,
    generate,
    lago_seed,
    queued_s3_event,
    subscriptions,
    weekly_tokyo,
)
from tokenmeter.metering.records import Unavailable

RECORDS = int(os.environ.get("TOKENMETER_E2E_RECORDS", "5000"))
LAGO_FAULTS = {"error_rate": 0.2, "drop_after_store_rate": 0.05, "seed": 11}
pytestmark = pytest.mark.slow

# The emulator's clock is 2026-11-15T12:00Z (Sunday 21:00 in Tokyo). Monthly by calendar in UTC: November.
MONTH = (1_793_491_200_000, 1_796_083_199_999)  # 2026-11-01T00:00:00.000Z .. 2026-11-30T23:59:59.999Z
# Weekly from Wednesday 2026-01-07 (Tokyo): Wed 2026-11-11 00:00 JST .. Tue 2026-11-17 23:59:59.999 JST.
WEEK = (1_794_322_800_000, 1_794_927_599_999)  # 2026-11-10T15:00:00.000Z .. 2026-11-17T14:59:59.999Z
STORES = {"postgres": {"event_store": "postgres"},
          "clickhouse": {"event_store": "clickhouse", "clickhouse_dedup": True, "usage_delay_ms": 1500}}
SETTLE_SECONDS = {"postgres": 0.0, "clickhouse": 3.0}
OBJECTS_PER_BATCH = 25  # (the template takes 100: smaller batches give S3's refusals more turns)


def period_of(subscription: str) -> tuple[int, int]:
    return WEEK if weekly_tokyo(subscription) else MONTH


class FlakySqs:
    """The SQS client count_tokens sends with, failing after ``fail_after`` more calls when armed."""

    def __init__(self, client):
        self.client, self.fail_after, self.sent = client, None, 0
        self._lock = threading.Lock()  # count_tokens sends a few batches at once, from its sender's threads

    def send_message_batch(self, **kwargs):
        with self._lock:
            self.sent += len(kwargs.get("Entries", []))
            fail = self.fail_after == 0
            if self.fail_after is not None:
                self.fail_after = None if fail else self.fail_after - 1
        if fail:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch")
        return self.client.send_message_batch(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


class FlakyS3:
    """The S3 client count_tokens reads with, refusing the object ``refuse`` names while it is set."""

    def __init__(self, client):
        self.client, self.refuse = client, None

    def get_object(self, **kwargs):
        if kwargs.get("Key") == self.refuse:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "injected"}}, "GetObject")
        return self.client.get_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


class Pipeline:
    """The three functions, wired as the template wires them, with the test in the role of AWS."""

    def __init__(self, aws, count_tokens, publish_event, lago_sync, reconcile, nats_server, lago, sqs: FlakySqs,
                 s3: FlakyS3, settle_seconds: float):
        self.aws, self.count_tokens, self.publish_event, self.lago_sync = aws, count_tokens, publish_event, lago_sync
        self.reconcile = reconcile
        self.sqs, self.s3, self.settle_seconds = sqs, s3, settle_seconds
        self.nats, self.lago = nats_server, lago
        self.rng = random.Random(3)
        self.log = Counter()
        self.drained_at = 0

    def trigger(self, event: dict) -> None:
        """A log trigger delivered twice; now and then the first attempt fails after part of its output left."""
        sqs = self.sqs
        if self.rng.random() < 0.3:
            sqs.fail_after = self.rng.randint(0, 2)
            try:
                self.count_tokens.lambda_handler(event, LambdaContext())
            except (ClientError, Unavailable):  # (Unavailable: SQS failed while the outbox sent as it filled)
                self.log["count_tokens failed part-way, retried"] += 1
            sqs.fail_after = None
        for _ in range(2):
            self.count_tokens.lambda_handler(event, LambdaContext())

    def trigger_objects(self, keys: list[str]) -> None:
        """Objects' notifications in one SQS batch, as the template delivers them; now and then S3 refuses one
        object, and the batch failure must name its message alone, which is then delivered again."""
        refused = self.rng.choice(keys) if self.rng.random() < 0.3 else None
        self.s3.refuse = refused
        result = self.count_tokens.lambda_handler(queued_s3_event("inference-logs", keys), LambdaContext())
        self.s3.refuse = None
        assert result == {"batchItemFailures": [{"itemIdentifier": refused}] if refused else []}, (refused, result)
        if refused:
            self.log["S3 refused an object: its message alone delivered again"] += 1
            self.trigger(queued_s3_event("inference-logs", [refused]))
        else:
            self.trigger(queued_s3_event("inference-logs", keys))  # SQS delivers at least once

    def keep_up(self, triggers_left: int, backlog: int = 3_000) -> None:
        """publish_event polls the UsageQueue while count_tokens fills it: past ``backlog`` messages (only long
        runs get there), drain it before going on, unless the triggers are nearly done (the fault schedule needs
        their messages). moto's SQS does work in proportion to the queue's length on every send and receive, so
        an ever longer queue would make the run quadratic."""
        if self.sqs.sent - self.drained_at < backlog or triggers_left < 100:
            return
        progress(f"publish_event catching up after {self.sqs.sent:,} messages")
        while self.publish_batch(redeliver=False):
            pass
        self.drained_at = self.sqs.sent

    def publish_batch(self, redeliver: bool) -> int:
        """One SQS poll of up to 10 messages into publish_event; failed items (or all, when ``redeliver``)
        become visible again, the rest are deleted, as the event source mapping does."""
        sqs, url = self.aws.sqs, self.aws.usage_url
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": {}, "eventSource": "aws:sqs"} for m in messages]}
        response = self.publish_event.lambda_handler(event, LambdaContext(remaining_ms=30_000))
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        self.log["publish_event items failed"] += len(failed)
        for m in messages:
            if redeliver or m["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def sync(self, remaining_ms: int, nats_down: bool = False, sweep: bool = False) -> dict | None:
        """A lago_sync run, then a reconcile pass (on their two schedules); lago_sync's summary with the pass's
        reconciliation."""
        try:
            summary = self.lago_sync.lambda_handler({"source": "aws.events"}, LambdaContext(remaining_ms=remaining_ms))
            self.log["lago_sync events handed back for retry"] += summary["retried"]
            self.log["lago_sync events Lago already held"] += summary["already_billed"]
            checked = self.reconcile.lambda_handler({"sweep": sweep}, LambdaContext(remaining_ms=remaining_ms))
            summary["reconciliation"] = checked["reconciliation"]
            return summary
        except Exception:
            if not nats_down:
                raise
            self.log["lago_sync or reconcile failed, NATS down"] += 1
            return None

    def restart_functions(self) -> None:
        """New Lambda environments for lago_sync and reconcile: configuration read again."""
        for app in (self.lago_sync, self.reconcile):
            if app._runtime is not None:
                app._runtime.nats.run(app._runtime.nats.close())
                app._runtime.nats.loop.close()
                app._runtime = None

    def kill_nats(self) -> None:
        self.nats.process.kill()
        self.nats.process.wait()

    def run(self, work: Workload) -> list[dict]:
        progress(f"count_tokens: {len(work.cloudwatch)} CloudWatch batches, {len(work.s3_objects)} S3 objects "
                 f"({OBJECTS_PER_BATCH} per SQS batch), each delivered twice or more")
        keys = list(work.s3_objects)
        left = len(work.cloudwatch) + len(keys)
        for batch in work.cloudwatch:
            self.trigger(cloudwatch_event(batch))
            left -= 1
            self.keep_up(left)
        for start in range(0, len(keys), OBJECTS_PER_BATCH):
            batch = keys[start:start + OBJECTS_PER_BATCH]
            for key in batch:
                self.aws.s3.put_object(Bucket="inference-logs", Key=key, Body=work.s3_objects[key])
            self.trigger_objects(batch)
            left -= len(batch)
            self.keep_up(left)
        progress("publish_event and lago_sync under faults (NATS killed, Lago failing, slow, restarted)")

        self.lago.set_faults(**LAGO_FAULTS)
        step, nats_down = 0, False
        while True:
            step += 1
            if step == 4:  # killed between invocations, unreachable for a stretch
                self.kill_nats()
                nats_down = True
            if step == 8:
                self.nats.start()
                nats_down = False
            if step == 12:  # killed during an invocation
                threading.Timer(0.02, self.kill_nats).start()
                nats_down = True
            if step == 13:
                time.sleep(0.1)
                self.nats.start()
                nats_down = False
            if step == 6:
                self.lago.set_faults(**LAGO_FAULTS, rate_limit_next=8, rate_limit_reset=1)
            if step == 9:  # slower than lago_sync's client timeout: Lago may store what the client gave up on
                self.lago.set_faults(**LAGO_FAULTS, latency_ms=600)
            if step == 11:
                self.lago.stop()
                self.lago.start()
                self.lago.set_faults(**LAGO_FAULTS)
            if not self.publish_batch(redeliver=step % 4 == 0) and step > 13:
                break
            if step % 2 == 0:
                self.sync(self.rng.randint(1_500, 5_000), nats_down)
        assert step > 13, f"the workload made only {step} SQS batches: too few for the fault schedule"
        self.lago.set_faults()
        # Faults over: the client timeout back from the 0.4 s that provoked lost answers to the default, as a
        # deployed lago_sync and reconcile have it (a large run's current usage takes Lago longer than 0.4 s).
        os.environ.pop("LAGO_TIMEOUT_SECONDS", None)
        self.restart_functions()
        progress(f"draining without faults after {step} SQS batches")
        summaries = []
        for _ in range(80):
            summary = self.sync(30_000)
            summaries.append(summary)
            if summary["pending"] == 0 and summary.get("reconciliation"):
                # Once Lago's usage has caught up and the last events have settled, one more judgement.
                time.sleep(self.settle_seconds + 0.5)
                summaries.append(self.sync(30_000, sweep=True))
                return summaries
            time.sleep(0.2)
        raise AssertionError(f"not drained after 80 runs: {summaries[-1]}")


@pytest.fixture
def workload(tiktoken_llama3) -> Workload:
    progress(f"generating {RECORDS:,} records and their truth")
    return generate(RECORDS, lambda prompt: 1 + len(tiktoken_llama3.encode(prompt)),
                    lambda completion: len(tiktoken_llama3.encode(completion)))


@pytest.fixture(params=list(STORES))
def pipeline(request, aws, count_tokens, publish_event, nats_server, workload, tmp_path, monkeypatch):
    models = sorted({model for _, model, _ in workload.truth})
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(lago_seed(models)))
    store = request.param
    lago = LagoEmulatorProcess(tmp_path / "lago", seed=seed, now=LAGO_NOW, **STORES[store]).start()
    for key, value in {"NATS_URL": nats_server.url, "LAGO_API_URL": lago.url, "LAGO_API_KEY": lago.api_key,
                       "LAGO_TIMEOUT_SECONDS": "0.4", "LAGO_SYNC_RETRY_MAX_SECONDS": "0.05",
                       "LAGO_SYNC_DEADLINE_MARGIN_SECONDS": "0.5", "NATS_CONNECT_TIMEOUT_SECONDS": "0.5",
                       "UNKNOWN_SUBSCRIPTION_HOLD_SECONDS": "2", "UNKNOWN_SUBSCRIPTION_RETRY_SECONDS": "1",
                       "RECONCILE_SETTLE_SECONDS": str(SETTLE_SECONDS[store])}.items():
        monkeypatch.setenv(key, value)
    lago_sync, reconcile = load_function_app("lago_sync"), load_function_app("reconcile")
    monkeypatch.setattr(lago_sync, "_runtime", None)
    monkeypatch.setattr(reconcile, "_runtime", None)
    flaky, flaky_s3 = FlakySqs(aws.sqs), FlakyS3(aws.s3)
    monkeypatch.setattr(count_tokens, "aws_client", lambda name: flaky if name == "sqs" else flaky_s3)
    pipeline = Pipeline(aws, count_tokens, publish_event, lago_sync, reconcile, nats_server, lago, flaky, flaky_s3,
                        SETTLE_SECONDS[store])
    yield pipeline
    pipeline.restart_functions()  # their connections closed
    lago.stop()


def progress(line: str) -> None:
    """A phase's start, for the long runs (`make soak` shows them)."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.__stderr__, flush=True)  # past pytest's capture


def segment(text: str) -> str:
    """A path segment as Lago's routes need it: every reserved byte escaped, '.' too (Rails' default segment)."""
    return quote(text, safe="").replace(".", "%2E")


def lago_rows(lago) -> Counter:
    """Lago's billed units per (subscription, model, token type), from current_usage."""
    rows = Counter()
    with httpx.Client(headers={"Authorization": f"Bearer {lago.api_key}"}) as http:
        for subscription in subscriptions():
            response = http.get(f"{lago.url}/api/v1/customers/{segment(customer_of(subscription))}/current_usage",
                                params={"external_subscription_id": subscription})
            assert response.status_code == 200, response.text
            usage = response.json()["customer_usage"]
            assert (usage["from_datetime"], usage["to_datetime"]) == tuple(
                _iso(ms) for ms in period_of(subscription)), subscription
            for charge in usage["charges_usage"]:
                for row in charge["filters"]:
                    units = float(row["units"])
                    assert units == int(units)
                    if units:
                        values = row["values"] or {}
                        rows[(subscription, values.get("model", ["?"])[0], values.get("token_type", ["?"])[0])] += int(units)
    return rows


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def billable(workload: Workload) -> tuple[Counter, Counter]:
    """The workload's usage inside each subscription's billing period, and the events outside it."""
    inside, outside = Counter(), Counter()
    for subscription, model, token_type, tokens, at in workload.usages:
        start, end = period_of(subscription)
        if start <= at <= end:
            inside[(subscription, model, token_type)] += tokens
        else:
            outside["events"] += 1
            outside["tokens"] += tokens
    return inside, outside


def test_nothing_lost_nothing_billed_twice_under_faults(pipeline, workload, aws, nats_server, capsys):
    started = time.monotonic()
    summaries = pipeline.run(workload)
    took = time.monotonic() - started
    progress(f"drained after {took:.0f} s; checking Lago, the ledger and the last reconciliation against the truth")
    truth, unbillable = billable(workload)
    assert unbillable["events"] > 0 and len(truth) > 0  # both sides of the weekly period are exercised

    # The faults did happen: Lago failed requests, and stored some whose answer never arrived.
    assert pipeline.log["lago_sync events handed back for retry"] > 0
    assert pipeline.log["publish_event items failed"] > 0 and pipeline.log["count_tokens failed part-way, retried"] > 0

    assert lago_rows(pipeline.lago) == truth
    stats = pipeline.lago.admin("stats")
    # No event counted twice, none for the ghost. The Postgres store refuses copies (and tells lago_sync so);
    # the ClickHouse store keeps them as rows and counts one per (subscription, code, timestamp, id).
    assert stats["distinct_events"] == workload.events
    if stats["event_store"] == "postgres":
        assert stats["events"] == workload.events and pipeline.log["lago_sync events Lago already held"] > 0

    distinct = {letter["id"]: letter for letter in drain(aws.sqs, aws.dead_url)}
    assert {BAD_MARKER.search(d["record"]).group(): d["reason"] for d in distinct.values()} == workload.bad
    assert len(distinct) == len(workload.bad)

    dead_events = {m.headers["Tokenmeter-Transaction-Id"]: m for m in stream_messages(nats_server.url, "USAGE_DLQ")}
    assert len(dead_events) == workload.ghost_events
    assert {m.headers["Tokenmeter-Reason"] for m in dead_events.values()} == {"unknown_subscription"}
    assert sum(json.loads(m.data)["properties"]["tokens"] for m in dead_events.values()) == workload.ghost_tokens
    assert {json.loads(m.data)["external_subscription_id"] for m in dead_events.values()} == {GHOST}

    # Usage before the weekly customers' current week: stored by Lago, never billed, and reported as such.
    late = {m.headers["Tokenmeter-Transaction-Id"]: m for m in stream_messages(nats_server.url, "USAGE_UNBILLABLE")}
    assert {m.headers["Tokenmeter-Reason"] for m in late.values()} == {"period_closed"}
    assert len(late) == unbillable["events"]
    assert sum(json.loads(m.data)["properties"]["tokens"] for m in late.values()) == unbillable["tokens"]

    ledger = stream_messages(nats_server.url, "USAGE")
    assert len(ledger) == len({m.headers["Nats-Msg-Id"] for m in ledger}) == workload.events + workload.ghost_events

    final = summaries[-1]["reconciliation"]
    assert final["drifting"] == [] and final["settling"] == 0
    # Every subscription, and the ghost's, whose usage Lago never knew (dead-lettered above).
    assert final["subscriptions"] == len({s for s, _, _ in truth}) + 1 and final["skipped"] == {GHOST: "unknown to Lago"}
    with capsys.disabled():
        print(f"\n{stats['event_store']}: {workload.records} records, {workload.events} events, {len(workload.bad)} bad "
              f"records, {workload.ghost_events} ghost events, {unbillable['events']} unbillable: exact after {took:.0f} s;"
              f" Lago rows {stats['events']}; faults: {dict(pipeline.log)}; last reconciliation skipped {final['skipped']}")
