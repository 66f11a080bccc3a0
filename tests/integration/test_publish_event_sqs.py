"""publish_event's SQS path against a real nats-server."""

import json
import time

import pytest
from conftest import LambdaContext, drain, sqs_event, stream_messages, usage_event

from tokenmeter.nats import decode_token


def message_ids(response):
    return sorted(f["itemIdentifier"] for f in response["batchItemFailures"])


def test_events_land_once_and_a_repeat_is_a_duplicate(publish_event, nats_server):
    event = sqs_event({"events": [usage_event(i) for i in range(5)]}, {"events": [usage_event(i) for i in range(5, 8)]})
    assert publish_event.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert publish_event.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    stored = stream_messages(nats_server.url)
    assert len(stored) == 8
    assert sorted(m.headers["Nats-Msg-Id"] for m in stored) == sorted(usage_event(i)["transaction_id"] for i in range(8))
    assert [json.loads(m.data) for m in stored if m.headers["Nats-Msg-Id"] == usage_event(3)["transaction_id"]] == [usage_event(3)]


def test_publish_outcomes_say_stored_then_duplicate(publish_event, nats_server):
    from tokenmeter.core import UsageEvent
    from tokenmeter.nats import publish_events

    rt = publish_event.runtime()
    events = [UsageEvent.from_dict(usage_event(i)) for i in range(3)]

    async def twice():
        await rt.nats.jetstream()
        first = await publish_events(rt.nats.client, events, rt.nats.settings, timeout=5)
        second = await publish_events(rt.nats.client, events[:2], rt.nats.settings, timeout=5)
        return first, second

    first, second = rt.nats.run(twice())
    assert [o.status for o in first] == ["stored"] * 3
    assert [o.status for o in second] == ["duplicate"] * 2
    assert [o.sequence for o in second] == [o.sequence for o in first[:2]]


def test_a_warm_environment_serves_many_invocations_on_one_connection(publish_event, nats_server):
    for batch in range(40):
        events = [usage_event(batch * 25 + i) for i in range(25)]
        response = publish_event.lambda_handler(sqs_event({"events": events[:12]}, {"events": events[12:]}), LambdaContext())
        assert response == {"batchItemFailures": []}
    assert publish_event.runtime().nats.connects == 1
    assert len(stream_messages(nats_server.url)) == 1000


def test_server_restart_between_invocations_reconnects(publish_event, nats_server):
    assert publish_event.lambda_handler(sqs_event({"events": [usage_event(1)]}), LambdaContext()) == {"batchItemFailures": []}
    nats_server.restart()  # same port, same file store
    time.sleep(1.1)  # an idle gap, as between two Lambda invocations
    assert publish_event.lambda_handler(sqs_event({"events": [usage_event(2)]}), LambdaContext()) == {"batchItemFailures": []}
    assert publish_event.runtime().nats.connects == 2
    assert len(stream_messages(nats_server.url)) == 2


def test_server_down_fails_every_message_and_the_redelivery_lands_once(publish_event, nats_server):
    publish_event.lambda_handler(sqs_event({"events": [usage_event(0)]}), LambdaContext())
    nats_server.stop()
    event = sqs_event({"events": [usage_event(i) for i in range(1, 4)]}, {"events": [usage_event(i) for i in range(4, 6)]})
    response = publish_event.lambda_handler(event, LambdaContext(remaining_ms=8000))
    assert message_ids(response) == sorted(r["messageId"] for r in event["Records"])
    nats_server.start()
    assert len(stream_messages(nats_server.url)) == 1  # nothing was stored while it was down
    assert publish_event.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert publish_event.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(stream_messages(nats_server.url)) == 6


@pytest.mark.parametrize("count", [1, 3])
def test_invalid_events_are_dead_lettered_and_the_rest_published(publish_event, nats_server, aws, count):
    good = [usage_event(i) for i in range(count)]
    bad = {**usage_event(99), "timestamp": "2024-11-26T18:40:00Z"}
    event = sqs_event({"events": [*good, bad]}, "not json at all", {"events": "nope"})
    assert publish_event.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert len(stream_messages(nats_server.url)) == count
    letters = sorted(drain(aws.sqs, aws.dead_url), key=lambda d: d["source"])
    assert [d["reason"] for d in letters] == ["invalid_event", "invalid_message", "invalid_message"]
    assert letters[0]["source"].endswith(f"#events[{count}]") and "timestamp" in letters[0]["detail"]
    assert json.loads(letters[0]["record"]) == bad


HOSTILE = ["a.b", "a", "a.*", "*", ">", "a b", "a\u00a0b", "東京-客户", "~41", "A", "a..b", "sub_😀", "a>b.c*"]


def test_hostile_subscription_ids_get_one_safe_subject_token_each(publish_event, nats_server):
    events = [usage_event(i, subscription=s) for i, s in enumerate(HOSTILE)]
    assert publish_event.lambda_handler(sqs_event({"events": events}), LambdaContext()) == {"batchItemFailures": []}
    stored = stream_messages(nats_server.url)
    assert len(stored) == len(HOSTILE)
    for message in stored:
        prefix, token, code = message.subject.split(".")
        assert (prefix, code) == ("usage", "llm_tokens")
        assert decode_token(token) == json.loads(message.data)["external_subscription_id"]
    assert len({m.subject for m in stored}) == len(HOSTILE)


def test_events_past_the_limits_cost_only_themselves(publish_event, nats_server, aws, monkeypatch):
    """Before: a 4 KB subscription id dropped the NATS connection ("maximum control line exceeded") and every
    event of the batch failed on every retry. Now each is a dead letter and the rest are stored at once."""
    good = [usage_event(i) for i in range(4)]
    bad = {
        "subscription id of 4 KB": {**usage_event(10), "external_subscription_id": "s" * 4096},
        "transaction id with CR LF": {**usage_event(11), "transaction_id": "t-11\r\nNats-Msg-Id: t-0"},
        "transaction id with edge spaces": {**usage_event(12), "transaction_id": " t-12 "},
        "2 MB of properties": {**usage_event(13), "properties": {**usage_event(13)["properties"], "note": "x" * 2_000_000}},
    }
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"extra_properties": ["note"]}))  # the contract takes a note
    surrogate = json.dumps({"events": [good[2], {**usage_event(14), "external_subscription_id": "sub\udc80"}, good[3]]})
    response = publish_event.lambda_handler(sqs_event({"events": [good[0], *bad.values(), good[1]]}, surrogate),
                                            LambdaContext())
    assert response == {"batchItemFailures": []}
    stored = stream_messages(nats_server.url)
    assert sorted(m.headers["Nats-Msg-Id"] for m in stored) == sorted(e["transaction_id"] for e in good)
    letters = drain(aws.sqs, aws.dead_url)
    assert [letter["reason"] for letter in letters] == ["invalid_event"] * 5
    details = " | ".join(letter["detail"] for letter in letters)
    for why in ("at most 256 characters", "no control characters", "no leading or trailing whitespace",
                "too large for NATS", "not valid Unicode"):
        assert why in details, why
