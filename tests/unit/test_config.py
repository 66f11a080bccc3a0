import json

import pytest

from tokenmeter.core import MeteringConfig, MeteringConfigError, load_config
from tokenmeter.core.config import PathPattern


def test_unset_config_gives_documented_defaults(monkeypatch):
    monkeypatch.delenv("METERING_CONFIG", raising=False)
    config = load_config()
    assert config.metric_code == "llm_tokens"
    assert config.subscription_from == ("requestMetadata.subscription_id", "user", "metadata.customer", "end_user",
                                        "attributes.user.id", "attributes.enduser.id")
    assert config.default_subscription is None
    assert config.tokenizers == {}
    assert config.property_names == {"tokens": "tokens", "model": "model", "token_type": "token_type"}


def test_json_document_from_environment(monkeypatch):
    monkeypatch.setenv(
        "METERING_CONFIG",
        json.dumps({"metric_code": "ai_tokens", "subscription_from": ["team"], "default_subscription": "sub_house"}),
    )
    config = load_config()
    assert (config.metric_code, config.subscription_from, config.default_subscription) == (
        "ai_tokens",
        ("team",),
        "sub_house",
    )


def test_yaml_file_with_tokenizer_folders_relative_to_the_file(tmp_path):
    path = tmp_path / "metering.yaml"
    path.write_text("metric_code: llm_tokens\ntokenizers:\n  'llama3*': tokenizers/llama3\n  'mistral*': /opt/python/m\n")
    config = load_config(str(path))
    assert config.tokenizers == {"llama3*": str(tmp_path / "tokenizers/llama3"), "mistral*": "/opt/python/m"}


def test_json_file(tmp_path):
    path = tmp_path / "metering.json"
    path.write_text(json.dumps({"property_names": {"token_type": "type"}}))
    assert load_config(str(path)).property_names == {"tokens": "tokens", "model": "model", "token_type": "type"}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"metric_code": ""}, "'metric_code'"),
        ({"metric_code": 7}, "'metric_code'"),
        ({"subscription_from": "user"}, "'subscription_from'"),
        ({"subscription_from": ["user", 3]}, "'subscription_from[1]'"),
        ({"default_subscription": ["x"]}, "'default_subscription'"),
        ({"tokenizers": ["llama3*"]}, "'tokenizers'"),
        ({"tokenizers": {"llama3*": None}}, "tokenizers['llama3*']"),
        ({"property_names": {"cost": "c"}}, "'property_names.cost'"),
        ({"property_names": {"model": "tokens"}}, "'property_names'"),
        ({"dead_letter_record_max_bytes": 10}, "'dead_letter_record_max_bytes'"),
        ({"subscriptions_from": ["user"]}, "'subscriptions_from'"),
        ({"bill_proxy_cache_hits": "yes"}, "'bill_proxy_cache_hits'"),
        ({"subscription_from": [{"path": "custom_id"}]}, "'subscription_from[0]'"),
        ({"subscription_from": ["user", {"path": "custom_id", "pattern": "^(sub"}]}, "'subscription_from[1].pattern'"),
        ({"subscription_from": [{"path": "custom_id", "pattern": "^(sub)_(\\d+)"}]}, "at most one group"),
        ({"subscription_from": [{"path": "", "pattern": "^sub"}]}, "'subscription_from[0].path'"),
        ({"model_names": ["k2v4x9pq7rla"]}, "'model_names'"),
        ({"model_names": {"k2v4x9pq7rla": ""}}, "model_names['k2v4x9pq7rla']"),
        ({"model_names": {"k2v4x9pq7rla": "clau\tde"}}, "control character"),
    ],
)
def test_invalid_key_is_named_in_the_error(document, named):
    with pytest.raises(MeteringConfigError) as error:
        load_config(json.dumps(document))
    assert named in str(error.value)
    assert str(error.value).startswith("METERING_CONFIG:")


def test_unreadable_and_unparsable_configs_say_so(tmp_path):
    with pytest.raises(MeteringConfigError, match="cannot read config file"):
        load_config(str(tmp_path / "missing.json"))
    with pytest.raises(MeteringConfigError, match="not valid JSON"):
        load_config('{"metric_code": ')
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("tokenizers: [unclosed\n")
    with pytest.raises(MeteringConfigError, match="not valid YAML"):
        load_config(str(bad_yaml))
    array = tmp_path / "array.json"
    array.write_text("[]")
    with pytest.raises(MeteringConfigError, match="must be a JSON/YAML object"):
        load_config(str(array))


def test_config_is_immutable():
    with pytest.raises(AttributeError):
        MeteringConfig().metric_code = "x"  # type: ignore[misc]


def test_proxy_cache_hits_are_not_billed_unless_asked():
    assert load_config("").bill_proxy_cache_hits is False
    assert load_config('{"bill_proxy_cache_hits": true}').bill_proxy_cache_hits is True


def test_a_subscription_rule_may_take_part_of_a_field_by_pattern():
    config = load_config(json.dumps({"subscription_from": ["user", {"path": "custom_id", "pattern": "^([^:]+):"}]}))
    assert config.subscription_from == ("user", PathPattern("custom_id", "^([^:]+):"))
