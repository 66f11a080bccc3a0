"""The metering config (``METERING_CONFIG``): read once, validated with a clear message."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import MeteringConfigError
from .identifiers import identifier_problem

ENV_VAR = "METERING_CONFIG"

# Bedrock's request tags, OpenAI's user, a gateway's customer; LiteLLM's end user; OpenTelemetry's user.id.
DEFAULT_SUBSCRIPTION_FROM = ("requestMetadata.subscription_id", "user", "metadata.customer", "end_user",
                             "attributes.user.id", "attributes.enduser.id")
DEFAULT_PROPERTY_NAMES = {"tokens": "tokens", "model": "model", "token_type": "token_type"}
# Where a record was logged, which a subscription_from rule reads as a field of its own (CloudWatch Logs Insights
# names its fields so): the log group and stream of a CloudWatch line, the bucket and key of an S3 object.
ORIGIN_FIELDS = ("@logGroup", "@logStream", "@bucket", "@key")
_APPLICATION_PROFILE = re.compile(r"^arn:[^:]+:bedrock:[^:]*:[^:]*:application-inference-profile/")


@dataclass(frozen=True)
class PathPattern:
    """A ``subscription_from`` rule that takes part of a field: the pattern's group, or its whole match where it
    has no group (``{"path": "custom_id", "pattern": "^(sub_[^:]+):"}``)."""

    path: str
    pattern: str

    def __str__(self) -> str:
        return f"{self.path} ~ {self.pattern}"


@dataclass(frozen=True)
class MeteringConfig:
    """What tokenmeter meters and how it attributes usage to Lago subscriptions."""

    metric_code: str = "llm_tokens"
    subscription_from: tuple[str | PathPattern, ...] = DEFAULT_SUBSCRIPTION_FROM
    default_subscription: str | None = None
    # Model-name glob pattern -> local tokenizer folder; first match wins.
    tokenizers: dict[str, str] = field(default_factory=dict)
    property_names: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROPERTY_NAMES))
    dead_letter_record_max_bytes: int = 32_768
    # The event contract every door checks (tokenmeter.core.contract): metric codes besides metric_code that
    # apps may report over HTTP, properties besides tokens/model/token_type, the largest token count, and
    # how far in the future a timestamp may be (clock skew).
    extra_metric_codes: tuple[str, ...] = ()
    extra_properties: tuple[str, ...] = ()
    max_tokens: int = 10**9
    max_future_seconds: int = 300
    # Bounds on reading one S3 object (count_tokens): a record (line), the whole object once inflated,
    # a document parsed whole, and dead letters before the rest of the object becomes one letter.
    max_record_bytes: int = 16 << 20
    max_object_bytes: int = 1 << 30
    max_document_bytes: int = 32 << 20
    max_dead_letters_per_object: int = 1000
    # A LiteLLM proxy cache hit costs the provider nothing: billed only when this says so.
    bill_proxy_cache_hits: bool = False
    # The model a reported name bills as, where the log names something the plan's prices do not: a Bedrock
    # application inference profile (its id, or its ARN) -> the model it routes to.
    model_names: dict[str, str] = field(default_factory=dict)

    @property
    def attributes_by_origin(self) -> bool:
        """Whether a subscription_from rule reads where a record was logged (ORIGIN_FIELDS)."""
        return any((rule if isinstance(rule, str) else rule.path).startswith("@") for rule in self.subscription_from)


def load_config(source: str | None = None, *, base_dir: Path | None = None) -> MeteringConfig:
    """Load the metering config from a JSON document or a path to a JSON/YAML file.

    ``source`` defaults to the ``METERING_CONFIG`` environment variable; unset
    or empty gives the defaults. Relative tokenizer folders in a file are read
    relative to that file.
    """
    text = os.environ.get(ENV_VAR, "") if source is None else source
    text = text.strip()
    if not text:
        return MeteringConfig()
    if text.startswith("{"):
        return parse_config(_parse_json(text, "the JSON document"), base_dir=base_dir)
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MeteringConfigError(f"{ENV_VAR}: cannot read config file {path}: {exc.strerror}") from None
    if path.suffix in (".yaml", ".yml"):
        document = _parse_yaml(content, str(path))
    else:
        document = _parse_json(content, str(path))
    return parse_config(document, base_dir=path.parent)


def parse_config(document: Any, *, base_dir: Path | None = None) -> MeteringConfig:
    """Validate a decoded config document; the error names the first bad key."""
    if not isinstance(document, Mapping):
        raise MeteringConfigError(f"{ENV_VAR}: must be a JSON/YAML object, got {type(document).__name__}")
    known = {f for f in MeteringConfig.__dataclass_fields__}
    for key in document:
        if key not in known:
            raise MeteringConfigError(f"{ENV_VAR}: unknown key {key!r} (known keys: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    if "metric_code" in document:
        values["metric_code"] = _non_empty_str(document["metric_code"], "metric_code")
    if "subscription_from" in document:
        paths = document["subscription_from"]
        if not isinstance(paths, list):
            raise _bad("subscription_from", "a list of dotted field paths", paths)
        values["subscription_from"] = tuple(_subscription_rule(p, f"subscription_from[{i}]") for i, p in enumerate(paths))
    if document.get("default_subscription") is not None:
        values["default_subscription"] = _non_empty_str(document["default_subscription"], "default_subscription")
    if "tokenizers" in document:
        values["tokenizers"] = _tokenizers(document["tokenizers"], base_dir)
    if "property_names" in document:
        values["property_names"] = _property_names(document["property_names"])
    for key in ("extra_metric_codes", "extra_properties"):
        if key in document:
            items = document[key]
            if not isinstance(items, list):
                raise _bad(key, "a list of names", items)
            values[key] = tuple(_non_empty_str(item, f"{key}[{i}]") for i, item in enumerate(items))
    for key, low, high in (("dead_letter_record_max_bytes", 256, 200_000), ("max_record_bytes", 1024, 1 << 30),
                           ("max_tokens", 1, 10**15), ("max_future_seconds", 0, 86_400),
                           ("max_object_bytes", 1024, 1 << 40), ("max_document_bytes", 1024, 1 << 30),
                           ("max_dead_letters_per_object", 0, 10**9)):
        if key in document:
            limit = document[key]
            if isinstance(limit, bool) or not isinstance(limit, int) or not low <= limit <= high:
                raise _bad(key, f"an integer from {low} to {high}", limit)
            values[key] = limit
    if "bill_proxy_cache_hits" in document:
        if not isinstance(document["bill_proxy_cache_hits"], bool):
            raise _bad("bill_proxy_cache_hits", "true or false", document["bill_proxy_cache_hits"])
        values["bill_proxy_cache_hits"] = document["bill_proxy_cache_hits"]
    if "model_names" in document:
        values["model_names"] = _model_names(document["model_names"])
    return MeteringConfig(**values)


def _model_names(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad("model_names", "an object mapping the model names logs report to the names to bill", value)
    names = {}
    for reported, billed in value.items():
        for name, key in ((reported, "model_names (a reported name)"), (billed, f"model_names[{reported!r}]")):
            problem = identifier_problem(_non_empty_str(name, key))
            if problem is not None:
                raise MeteringConfigError(f"{ENV_VAR}: {key!r}: {problem}")
        # An application inference profile's ARN: its calls are read as the profile's id (the ARN's last part).
        names[_APPLICATION_PROFILE.sub("", reported)] = billed
    return names


def _subscription_rule(value: Any, key: str) -> str | PathPattern:
    if not isinstance(value, Mapping):
        return _rule_path(value, key)
    if set(value) != {"path", "pattern"}:
        raise _bad(key, 'a dotted field path, or an object {"path": ..., "pattern": ...}', value)
    path, pattern = _rule_path(value["path"], f"{key}.path"), _non_empty_str(value["pattern"], f"{key}.pattern")
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise MeteringConfigError(f"{ENV_VAR}: '{key}.pattern' is not a regular expression: {exc}") from None
    if groups > 1:
        raise _bad(f"{key}.pattern", "a regular expression with at most one group (the subscription)", pattern)
    return PathPattern(path, pattern)


def _rule_path(value: Any, key: str) -> str:
    path = _non_empty_str(value, key)
    if path.startswith("@") and path not in ORIGIN_FIELDS:
        raise _bad(key, f"a dotted field path, or where the record was logged: one of {', '.join(ORIGIN_FIELDS)}", path)
    return path


def _tokenizers(value: Any, base_dir: Path | None) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad("tokenizers", "an object mapping model patterns to tokenizer folders", value)
    folders = {}
    for pattern, folder in value.items():
        folder = _non_empty_str(folder, f"tokenizers[{pattern!r}]")
        if base_dir is not None and not os.path.isabs(folder):
            folder = str(base_dir / folder)
        folders[_non_empty_str(pattern, "tokenizers (pattern)")] = folder
    return folders


def _property_names(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _bad("property_names", "an object", value)
    names = dict(DEFAULT_PROPERTY_NAMES)
    for key, name in value.items():
        if key not in DEFAULT_PROPERTY_NAMES:
            raise MeteringConfigError(
                f"{ENV_VAR}: unknown key 'property_names.{key}' (known: {', '.join(DEFAULT_PROPERTY_NAMES)})"
            )
        names[key] = _non_empty_str(name, f"property_names.{key}")
    if len(set(names.values())) != len(names):
        raise _bad("property_names", "distinct names", value)
    return names


def _non_empty_str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, "a non-empty string", value)
    return value


def _bad(key: str, expected: str, got: Any) -> MeteringConfigError:
    shown = repr(got) if len(repr(got)) <= 80 else f"a {type(got).__name__}"
    return MeteringConfigError(f"{ENV_VAR}: {key!r} must be {expected}, got {shown}")


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MeteringConfigError(f"{ENV_VAR}: {where} is not valid JSON: {exc}") from None


def _parse_yaml(text: str, where: str) -> Any:
    import yaml  # only configs kept as YAML files pay for the import

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MeteringConfigError(f"{ENV_VAR}: {where} is not valid YAML: {exc}") from None
