"""The managed NATS connection layer against real nats-servers: auth, stream provisioning."""

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import nkeys
import pytest
from conftest import LambdaContext, sqs_event, usage_event
from nats.js.api import StorageType, StreamConfig

from local.nats_server import NatsServer
from tokenmeter.nats import ManagedConnection, NatsSettings, NatsUnavailable, StreamConfigConflict


def settings(url, **overrides):
    return NatsSettings(url=url, connect_timeout_seconds=1, **overrides)


def connect(connection):
    return connection.run(connection.jetstream())


@pytest.fixture
def connections():
    made = []

    def make(*args, **kwargs):
        connection = ManagedConnection(*args, **kwargs)
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.run(connection.close())
        connection.loop.close()


def new_user_seed():
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


@pytest.mark.parametrize("kind", ["user_password", "token", "nkey_seed", "nkey_seed_json"])
def test_authenticated_server_accepts_the_layer_with_credentials_and_refuses_it_without(tmp_path, connections, kind):
    seed, public = new_user_seed()
    server_auth, secret = {
        "user_password": ('authorization { user: "metering", password: "pa55-w0rd" }',
                          json.dumps({"user": "metering", "password": "pa55-w0rd"})),
        "token": ('authorization { token: "t0ken-value" }', "t0ken-value"),
        "nkey_seed": (f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}', seed),
        "nkey_seed_json": (f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}', json.dumps({"nkey_seed": seed})),
    }[kind]
    server = NatsServer(tmp_path / "js", config=server_auth).start()
    try:
        secrets = {"arn:aws:secretsmanager:us-east-1:1:secret:nats": secret}
        with_creds = connections(settings(server.url, creds_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:nats"),
                                 secret_loader=secrets.__getitem__)
        assert connect(with_creds) is not None
        without = connections(settings(server.url))
        with pytest.raises(NatsUnavailable) as refused:
            connect(without)
        assert "Authorization" in str(refused.value) or "authorization" in str(refused.value)
        assert secret not in str(refused.value) and "pa55" not in str(refused.value)
    finally:
        server.stop()


def test_credentials_come_from_secrets_manager(tmp_path, aws, publish_event, monkeypatch):
    server = NatsServer(tmp_path / "js", config='authorization { user: "metering", password: "pa55-w0rd" }').start()
    try:
        import boto3

        arn = boto3.client("secretsmanager").create_secret(
            Name="tokenmeter/nats", SecretString=json.dumps({"user": "metering", "password": "pa55-w0rd"}))["ARN"]
        monkeypatch.setenv("NATS_URL", server.url)
        monkeypatch.setenv("NATS_CREDS_SECRET_ARN", arn)
        assert publish_event.lambda_handler(sqs_event({"events": [usage_event(1)]}), LambdaContext()) == {"batchItemFailures": []}
    finally:
        server.stop()


def test_stream_and_consumer_are_created_once_with_the_configured_limits(nats_server, connections):
    first = connections(settings(nats_server.url, duplicate_window_seconds=900, max_age_seconds=5 * 86400))
    js = connect(first)
    info = first.run(js.stream_info("USAGE"))
    assert info.config.subjects == ["usage.>"] and info.config.storage == StorageType.FILE
    assert info.config.duplicate_window == 900 and info.config.max_age == 5 * 86400
    consumer = first.run(js.consumer_info("USAGE", "lago-sync"))
    assert consumer.config.durable_name == "lago-sync" and consumer.config.filter_subject == "usage.>"
    second = connections(settings(nats_server.url, duplicate_window_seconds=900, max_age_seconds=5 * 86400))
    connect(second)  # what exists is left as it is


def test_a_changed_age_limit_or_dedup_window_updates_the_stream_in_place(nats_server, connections):
    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import publish_events

    first = connections(settings(nats_server.url, duplicate_window_seconds=900, max_age_seconds=5 * 86400))
    connect(first)
    event = UsageEvent("t-1", "sub_1", "llm_tokens", "1732646400.000", {"tokens": 5, "model": "m", "token_type": "input"})
    assert first.run(publish_events(first.client, [event], first.settings, timeout=5))[0].status == "stored"
    second = connections(settings(nats_server.url, duplicate_window_seconds=600, max_age_seconds=9 * 86400))
    js = connect(second)
    info = second.run(js.stream_info("USAGE"))
    assert info.config.duplicate_window == 600 and info.config.max_age == 9 * 86400
    assert info.state.messages == 1  # the ledger kept


def test_conflicting_existing_stream_is_a_clear_error(nats_server, connections):
    async def create_other():
        import nats

        nc = await nats.connect(nats_server.url)
        await nc.jetstream().add_stream(StreamConfig(name="USAGE", subjects=["usage.>"], storage=StorageType.MEMORY))
        await nc.close()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(create_other())
    loop.close()
    connection = connections(settings(nats_server.url))
    with pytest.raises(StreamConfigConflict, match="storage") as conflict:
        connect(connection)
    assert "duplicate_window" in str(conflict.value) and "stream USAGE" in str(conflict.value)


def test_an_event_jetstream_does_not_store_in_the_usage_stream_fails_with_why(nats_server, connections):
    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import publish_events

    connection = connections(settings(nats_server.url))
    js = connect(connection)
    connection.run(js.add_stream(StreamConfig(name="OTHER", subjects=["other.>"], storage=StorageType.MEMORY)))
    event = UsageEvent("0" * 32 + "-input", "sub_1", "llm_tokens", "1732646400.000",
                       {"tokens": 5, "model": "m", "token_type": "input"})
    for prefix, why in (("other", "JetStream error 10060"), ("nowhere", "JetStream 503")):
        # A subject another stream captures is refused by the expected-stream check; one no stream
        # captures has no responder. Neither is ever "stored".
        misrouted = NatsSettings(url=nats_server.url, subject_prefix=prefix)
        [outcome] = connection.run(publish_events(connection.client, [event], misrouted, timeout=5))
        assert outcome.status == "failed" and outcome.error.startswith(why), outcome
    assert connection.run(js.stream_info("OTHER")).state.messages == 0


def test_a_server_that_stopped_answering_between_two_runs_is_found_out_at_the_next_run_however_soon(
        nats_server, connections):
    # The idle gap is never reached here, and a frozen server sends no goodbye: only the check at the start of
    # each run can tell, before a request waits out its timeout on a connection that still says connected.
    connection = connections(settings(nats_server.url, idle_check_seconds=3600))
    connect(connection)
    os.kill(nats_server.process.pid, signal.SIGSTOP)
    try:
        stopped(nats_server.process.pid)  # (a signal is delivered when the kernel gets to it: a busy machine lags)
        started = time.monotonic()
        with pytest.raises(NatsUnavailable):
            connect(connection)
        assert time.monotonic() - started < 4  # the 0.5 s flush and a 1 s connect timeout, not a 5 s request
    finally:
        os.kill(nats_server.process.pid, signal.SIGCONT)
    js = connect(connection)
    assert connection.connects == 2
    assert connection.run(js.stream_info("USAGE")).config.name == "USAGE"


def stopped(pid: int) -> None:
    """Wait until every thread of the process is stopped (state T in /proc/<pid>/task/*/stat): nats-server's
    threads stop one by one, and one still running would answer."""
    for _ in range(500):
        try:
            states = {Path(task, "stat").read_text().rpartition(")")[2].split()[0]
                      for task in Path(f"/proc/{pid}/task").iterdir()}
        except FileNotFoundError:  # a thread that ended while it was read
            states = {"?"}
        if states <= {"T", "t"}:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


def test_a_dead_connection_is_replaced_after_an_idle_gap(nats_server, connections):
    connection = connections(settings(nats_server.url, idle_check_seconds=0))
    connect(connection)
    nats_server.restart()
    connect(connection)
    assert connection.connects == 2
    connect(connection)
    assert connection.connects == 2


def test_a_call_of_more_events_than_may_be_in_flight_stores_each_once_in_order(nats_server, connections):
    # 9,001 events: more than twice MAX_IN_FLIGHT (4,000) unacknowledged at once, and not a whole number of the
    # SEND_EVERY (64) messages handed over per send. Each stored once, its sequence the stream's next; again: duplicates.
    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import publish_events

    connection = connections(settings(nats_server.url))
    js = connect(connection)
    first = connection.run(js.stream_info("USAGE")).state.last_seq
    events = [UsageEvent(f"{i:032x}-input", f"sub_{i % 7}", "llm_tokens", "1732646400.000",
                         {"tokens": i, "model": "m", "token_type": "input"}) for i in range(9_001)]
    outcomes = connection.run(publish_events(connection.client, iter(events), settings(nats_server.url), timeout=60))
    assert [o.transaction_id for o in outcomes] == [e.transaction_id for e in events]
    assert {o.status for o in outcomes} == {"stored"}
    assert [o.sequence for o in outcomes] == list(range(first + 1, first + 9_002))
    again = connection.run(publish_events(connection.client, events, settings(nats_server.url), timeout=60))
    assert {o.status for o in again} == {"duplicate"}
    assert connection.run(js.stream_info("USAGE")).state.last_seq == first + 9_001
