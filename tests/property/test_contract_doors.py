"""No event that breaks the contract gets through a door: for 1,000 generated events per door (the HTTP
route, the SQS trigger, lago_sync before Lago), every event let through keeps the contract as an
independent reading of it says, and every event that keeps it is let through."""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmeter.core import Contract, parse_config
from tokenmeter.ingestion.http_api import HttpSettings, handle_request
from tokenmeter.ingestion.sqs_batch import decode_message
from tokenmeter.nats import NatsSettings, PublishOutcome
from tokenmeter.shipping.settings import SyncSettings
from tokenmeter.shipping.shipper import Shipper

EXAMPLES = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = int(time.time())
TYPES = {"input", "output", "cached_input", "cache_write", "reasoning", "input_audio", "output_audio", "input_image",
         "output_image"}
CONTRACT = Contract.from_config(parse_config({}), max_age_seconds=62 * 86_400)

ids = st.one_of(st.sampled_from(["t-1", "sub_42", "acme/eu west", "ünï", "a" * 256]),
                st.sampled_from(["", " x", "x ", "a\nb", "a\tb", "a" * 257, "\udc80"]), st.integers(), st.none(),
                st.text(max_size=20))
tokens = st.one_of(st.integers(min_value=0, max_value=10**9), st.sampled_from([-1, -1000, 10**9 + 1, 1.5, 2.0, "10",
                                                                                 True, None]))
timestamps = st.sampled_from([f"{NOW - 3600}.123", f"{NOW}", f"{NOW + 60}.000", f"{NOW + 86_400}.000",
                              f"{NOW - 70 * 86_400}.000", "2026-11-15T12:00:00Z", "abc", ""])
properties = st.fixed_dictionaries({}, optional={
    "tokens": tokens, "model": st.one_of(st.sampled_from(["gpt-4o", "", "m" * 300]), st.none(), st.integers()),
    "token_type": st.one_of(st.sampled_from(sorted(TYPES)), st.sampled_from(["bonus", "", "INPUT"])),
    "discount": st.floats(allow_nan=False)})
anything = st.fixed_dictionaries({}, optional={
    "transaction_id": ids, "external_subscription_id": ids, "code": st.sampled_from(["llm_tokens", "other", ""]),
    "timestamp": timestamps, "properties": properties | st.sampled_from([[], "x", None])})
# Mostly good events, one field at a time made bad: both sides of every rule are reached often.
good = st.fixed_dictionaries({
    "transaction_id": st.text(st.characters(codec="utf-8", categories=["L", "N", "P"]), min_size=1, max_size=40),
    "external_subscription_id": st.sampled_from(["sub_42", "acme/eu west", "ünï 客户"]), "code": st.just("llm_tokens"),
    "timestamp": st.integers(NOW - 60 * 86_400, NOW).map(lambda s: f"{s}.250"),
    "properties": st.fixed_dictionaries({"tokens": st.integers(0, 10**9), "model": st.sampled_from(["gpt-4o", "llama3"]),
                                         "token_type": st.sampled_from(sorted(TYPES))})})
mutated = st.tuples(good, anything).flatmap(lambda pair: st.sampled_from(sorted(pair[1]) or ["code"]).map(
    lambda field: {**pair[0], field: pair[1].get(field, "")}))
nested = st.tuples(good, properties).flatmap(lambda pair: st.sampled_from(sorted(pair[1]) or ["tokens"]).map(
    lambda name: {**pair[0], "properties": {**pair[0]["properties"], name: pair[1].get(name)}}))
events = st.one_of(good, mutated, nested, anything)


def keeps_contract(event: object) -> bool:
    """The contract as DESIGN.md states it, written here again without the code under test."""
    if not isinstance(event, dict):
        return False

    def identifier(value: object) -> bool:
        if not isinstance(value, str) or not value or len(value) > 256 or value != value.strip():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return not any(unicodedata.category(c) == "Cc" or c in "\u2028\u2029" for c in value)

    stamp = event.get("timestamp")
    if not isinstance(stamp, str) or not stamp.replace(".", "", 1).isdigit() or not stamp[0].isdigit():
        return False
    seconds = float(stamp)
    props = event.get("properties", {})
    return (all(identifier(event.get(k)) for k in ("transaction_id", "external_subscription_id", "code"))
            and event["code"] == "llm_tokens" and isinstance(props, dict)
            and set(props) <= {"tokens", "model", "token_type"}
            and type(props.get("tokens")) is int and 0 <= props["tokens"] <= 10**9
            and props.get("token_type") in TYPES and identifier(props.get("model"))
            and NOW - 62 * 86_400 + 60 <= seconds <= NOW + 240)  # margins: the contract reads the clock itself


def decisive(event: object) -> bool:
    """Leave out the few timestamps within a minute of a window's edge: the clock moves while the test runs."""
    stamp = event.get("timestamp") if isinstance(event, dict) else None
    if not isinstance(stamp, str) or not stamp.replace(".", "", 1).isdigit():
        return True
    seconds = float(stamp)
    return abs(seconds - (NOW + 300)) > 60 and abs(seconds - (NOW - 62 * 86_400)) > 60


@EXAMPLES
@given(st.lists(events, min_size=1, max_size=5))
def test_the_http_door(batch):
    if not all(decisive(e) for e in batch):
        return
    published = []

    def publish(found):
        published.extend(found)
        return [PublishOutcome(e.transaction_id, "stored") for e in found]

    request = {"headers": {}, "body": json.dumps({"events": batch}), "isBase64Encoded": False}
    reply, _ = handle_request(request, HttpSettings(), publish, CONTRACT)
    assert all(keeps_contract(json.loads(e.to_json())) for e in published)
    if all(keeps_contract(e) for e in batch):
        assert reply.status == 202 and len(published) == len(batch)
    else:
        assert reply.status == 400 and not published  # a request is refused whole


@EXAMPLES
@given(st.lists(events, min_size=1, max_size=5))
def test_the_sqs_door(batch):
    if not all(decisive(e) for e in batch):
        return
    passed, letters = decode_message(json.dumps({"events": batch}), "sqs:1", CONTRACT)
    assert all(keeps_contract(json.loads(e.to_json())) for e in passed)
    assert len(passed) == sum(keeps_contract(e) for e in batch)
    assert len(passed) + len(letters) == len(batch) and all(letter.reason == "invalid_event" for letter in letters)


class _Message:
    def __init__(self, data: bytes):
        self.data, self.headers, self.subject = data, {}, "usage.s.llm_tokens"
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=1), num_delivered=1, stream="USAGE")


class _KnownLago:
    """Every subscription and metric known and active: only the contract decides."""

    async def subscription(self, external_id):
        return self.cached_subscription(external_id)

    def cached_subscription(self, external_id):
        return SimpleNamespace(status="active", started_ms=0, ended_ms=None, period_start_ms=0, period_end_ms=None,
                               external_customer_id="c")

    async def metric_exists(self, code):
        return True

    async def look_up_subscriptions(self, external_ids):
        pass


@EXAMPLES
@given(st.lists(events, min_size=1, max_size=5))
def test_the_door_before_lago(batch):
    if not all(decisive(e) for e in batch):
        return
    shipper = Shipper(None, None, _KnownLago(), NatsSettings(url="nats://unused"), SyncSettings("http://lago", "k"),
                      deadline=time.monotonic() + 60, contract=CONTRACT)
    refused = []

    async def dead_letter(msg, reason, detail):
        refused.append(reason)

    shipper.dead_letter = dead_letter
    chunks = asyncio.run(shipper.prepare([_Message(json.dumps(e).encode()) for e in batch]))
    shipped = [event for chunk in chunks for _, event in chunk]
    assert all(keeps_contract(json.loads(e.to_json())) for e in shipped)
    assert len(shipped) == sum(keeps_contract(e) for e in batch) and len(refused) == len(batch) - len(shipped)
