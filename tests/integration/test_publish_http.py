"""publish_http, POST /v1/events (API Gateway HTTP API payload 2.0) against a real nats-server."""

import json

import pytest
from conftest import LambdaContext, http_api_event, stream_messages, usage_event


def http_event(body, *, headers=None, method="POST", base64_encoded=False):
    return http_api_event(body, headers=headers, method=method, base64_encoded=base64_encoded)


def call(app, event):
    response = app.lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_accepts_one_event_or_a_list_and_reports_each(publish_http, nats_server):
    status, body = call(publish_http, http_event(usage_event(1)))
    assert status == 202 and body == {"accepted": 1, "results": [{"transaction_id": usage_event(1)["transaction_id"],
                                                                  "status": "stored"}]}
    status, body = call(publish_http, http_event({"events": [usage_event(1), usage_event(2)]}, base64_encoded=True))
    assert status == 202 and [r["status"] for r in body["results"]] == ["duplicate", "stored"]
    assert len(stream_messages(nats_server.url)) == 2


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("{not json", 400, "invalid_json"),
        ("[1, 2]", 400, "invalid_body"),
        ({"events": {"a": 1}}, 400, "invalid_body"),
        ({"events": []}, 400, "no_events"),
        ({"events": [usage_event(i) for i in range(501)]}, 413, "too_many_events"),
        ({"events": [usage_event(0)], "padding": "x" * 1_100_000}, 413, "body_too_large"),
    ],
    ids=["not-json", "array", "events-not-array", "empty", "too-many", "too-large"],
)
def test_bad_requests_each_get_their_own_error(publish_http, nats_server, body, status, error):
    got_status, got_body = call(publish_http, http_event(body))
    assert (got_status, got_body["error"]) == (status, error)
    assert got_body["message"]
    assert stream_messages(nats_server.url) == []


def test_field_errors_name_each_event_and_field_and_nothing_is_published(publish_http, nats_server):
    events = [usage_event(0),
              {**usage_event(1), "timestamp": 1732646400},
              {k: v for k, v in usage_event(2).items() if k not in ("code", "external_subscription_id")},
              {**usage_event(3), "properties": "tokens=5", "transaction_id": 17}]
    status, body = call(publish_http, http_event({"events": events}))
    assert status == 400 and body["error"] == "invalid_events"
    assert set(body["errors"]) == {"events[1].timestamp", "events[2].code", "events[2].external_subscription_id",
                                   "events[3].properties", "events[3].transaction_id"}
    assert stream_messages(nats_server.url) == []


def test_wrong_method_is_refused(publish_http):
    assert call(publish_http, http_event("", method="GET"))[0] == 405


def test_shared_api_key_is_required_when_configured(publish_http, nats_server, monkeypatch):
    monkeypatch.setenv("HTTP_API_KEY", "k3y-s3cret")
    assert call(publish_http, http_event(usage_event(1)))[0] == 401
    assert call(publish_http, http_event(usage_event(1), headers={"x-api-key": "k3y-s3creT"}))[0] == 401
    assert call(publish_http, http_event(usage_event(1), headers={"X-Api-Key": "k3y-s3cret"}))[0] == 202
    assert call(publish_http, http_event(usage_event(2), headers={"Authorization": "Bearer k3y-s3cret"}))[0] == 202
    assert len(stream_messages(nats_server.url)) == 2


ACME_KEY, TENANTS_KEY = "acme-key-0123456789abcdef", "tenants-key-fedcba9876543210"
API_KEYS = {"acme-app": {"key": ACME_KEY, "subscriptions": ["sub_acme"]},
            "tenant-gateway": {"key": TENANTS_KEY, "subscriptions": ["tenant-*", "sub_globex"]}}


def test_each_api_key_reports_only_for_its_subscriptions(publish_http, nats_server, monkeypatch):
    monkeypatch.setenv("HTTP_API_KEY", json.dumps(API_KEYS))
    acme, tenants = {"x-api-key": ACME_KEY}, {"Authorization": f"Bearer {TENANTS_KEY}"}
    assert call(publish_http, http_event(usage_event(1, "sub_acme"), headers=acme))[0] == 202
    assert call(publish_http, http_event(usage_event(2, "tenant-42"), headers=tenants))[0] == 202
    assert call(publish_http, http_event(usage_event(3, "sub_globex"), headers=tenants))[0] == 202

    status, body = call(publish_http, http_event({"events": [usage_event(4, "sub_acme"), usage_event(5, "sub_globex")]},
                                                  headers=acme))
    assert status == 403 and body["error"] == "forbidden_subscription" and "'acme-app'" in body["message"]
    assert body["errors"] == {"events[1].external_subscription_id":
                              "this API key may not report usage for this subscription"}
    assert call(publish_http, http_event(usage_event(6, "sub_acme"), headers=tenants))[0] == 403
    assert call(publish_http, http_event(usage_event(7, "tenant"), headers=tenants))[0] == 403  # no suffix: no match
    assert call(publish_http, http_event(usage_event(8, "sub_acme"), headers={"x-api-key": TENANTS_KEY[:-1]}))[0] == 401
    assert call(publish_http, http_event(usage_event(9, "sub_acme")))[0] == 401
    stored = {json.loads(m.data)["external_subscription_id"] for m in stream_messages(nats_server.url)}
    assert stored == {"sub_acme", "tenant-42", "sub_globex"} and len(stream_messages(nats_server.url)) == 3


@pytest.mark.parametrize("keys, message", [
    ({"acme-app": {"key": "short", "subscriptions": ["sub_acme"]}}, "'acme-app' needs a 'key' string of at least 16"),
    ({"acme-app": {"key": ACME_KEY}}, "'acme-app' needs 'subscriptions'"),
    ({"acme-app": {"key": ACME_KEY, "subscriptions": []}}, "'acme-app' needs 'subscriptions'"),
    ({}, "must map each caller"),
])
def test_bad_api_key_config_is_a_clear_error_without_the_key(keys, message):
    from tokenmeter.core import MeteringConfigError
    from tokenmeter.ingestion.http_api import parse_api_keys

    with pytest.raises(MeteringConfigError, match=message) as error:
        parse_api_keys(json.dumps(keys))
    assert ACME_KEY not in str(error.value)


def test_nats_down_is_503_saying_what_was_stored(publish_http, nats_server):
    assert call(publish_http, http_event(usage_event(1)))[0] == 202
    nats_server.stop()
    status, body = call(publish_http, http_event({"events": [usage_event(1), usage_event(2)]}))
    assert status == 503 and body["error"] == "unavailable"
    assert [r["status"] for r in body["results"]] == ["failed", "failed"]
    assert "0 stored" in body["message"]


def test_an_event_too_large_for_nats_is_400_and_breaks_nothing(publish_http, nats_server, monkeypatch):
    monkeypatch.setenv("HTTP_MAX_BODY_BYTES", str(4 << 20))
    monkeypatch.setenv("METERING_CONFIG", json.dumps({"extra_properties": ["note"]}))  # the contract allows it
    publish_http._runtime = None
    big = {**usage_event(2), "properties": {**usage_event(2)["properties"], "note": "x" * 1_500_000}}
    status, body = call(publish_http, http_event({"events": [usage_event(1), big, usage_event(3)]}))
    assert status == 400 and body["error"] == "events_too_large" and list(body["errors"]) == ["events[1]"]
    assert "too large for NATS" in body["errors"]["events[1]"]
    assert [r["status"] for r in body["results"]] == ["stored", "rejected", "stored"]
    status, _ = call(publish_http, http_event(usage_event(4)))  # the connection is still up
    assert status == 202 and len(stream_messages(nats_server.url)) == 3
