"""Pieces of the NATS layer that need no server: subjects, settings, credentials."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmeter.nats import NatsSettings, NatsSettingsError, decode_token, encode_token, redact, subject_for
from tokenmeter.nats.credentials import connect_options


@pytest.mark.parametrize(
    ("value", "token"),
    [("sub_42", "sub_42"), ("a.b", "a~2Eb"), ("*", "~2A"), (">", "~3E"), ("a b", "a~20b"), ("~", "~7E"),
     ("é", "~C3~A9"), ("", "~")],
)
def test_tokens_by_hand(value, token):
    assert encode_token(value) == token
    assert decode_token(token) == value


@settings(max_examples=1000)
@given(st.text())
def test_every_id_round_trips_as_one_safe_token(value):
    token = encode_token(value)
    assert token and not any(c in token for c in ".*> \t\r\n")
    assert decode_token(token) == value


@settings(max_examples=500)
@given(st.text(), st.text())
def test_distinct_ids_never_share_a_subject(a, b):
    if a != b:
        assert subject_for("usage", a, "llm_tokens") != subject_for("usage", b, "llm_tokens")


@pytest.mark.parametrize("token", ["a.b", "~2e", "~4", "a b", "~~"])
def test_tokens_never_produced_are_rejected(token):
    with pytest.raises(ValueError):
        decode_token(token)


def test_settings_defaults_and_errors():
    defaults = NatsSettings.from_env({"NATS_URL": "nats://n:4222"})
    assert (defaults.stream, defaults.subjects, defaults.consumer) == ("USAGE", ["usage.>"], "lago-sync")
    assert defaults.max_age_seconds == 62 * 86400 and defaults.duplicate_window_seconds == 3600
    with pytest.raises(NatsSettingsError, match="NATS_URL"):
        NatsSettings.from_env({})
    with pytest.raises(NatsSettingsError, match="NATS_SUBJECT_PREFIX"):
        NatsSettings.from_env({"NATS_URL": "x", "NATS_SUBJECT_PREFIX": "usage.v1"})
    with pytest.raises(NatsSettingsError, match="NATS_DEDUP_WINDOW_SECONDS must be a number"):
        NatsSettings.from_env({"NATS_URL": "x", "NATS_DEDUP_WINDOW_SECONDS": "1h"})
    with pytest.raises(NatsSettingsError, match="NATS_STREAM_REPLICAS must be between"):
        NatsSettings.from_env({"NATS_URL": "x", "NATS_STREAM_REPLICAS": "7"})


CREDS = """-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU
------END USER NKEY SEED------
"""


def test_secret_shapes_become_connect_options():
    assert str(connect_options(CREDS)["user_credentials"]) == CREDS.strip()
    seed = "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU"
    assert connect_options(seed) == {"nkeys_seed_str": seed}
    assert connect_options(" plain-token\n") == {"token": "plain-token"}
    assert connect_options(json.dumps({"user": "u", "password": "p"})) == {"user": "u", "password": "p"}
    assert connect_options(json.dumps({"token": "t"})) == {"token": "t"}


@pytest.mark.parametrize("secret", ["", "{not json", json.dumps({"user": "only-user"}), "{}"])
def test_unusable_secrets_are_described_without_their_content(secret):
    with pytest.raises(NatsSettingsError) as error:
        connect_options(secret)
    assert "only-user" not in str(error.value)


def test_urls_are_logged_without_credentials():
    assert redact("nats://user:pa55@nats.internal:4222") == "nats://nats.internal:4222"
    assert redact("tls://tok3n@nats.example.com") == "tls://nats.example.com"
