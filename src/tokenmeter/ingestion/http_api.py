"""``POST /v1/events`` (API Gateway HTTP API) for apps that count their own tokens.

Each refusal has its own status and error code; a request either has every event
validated (envelope and contract) before anything is published, or is refused whole.
The route itself is Powertools' HTTP API resolver (functions/publish_http); this is what it does.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import orjson

from tokenmeter.core import Contract, MeteringConfigError, UsageEvent
from tokenmeter.nats import PublishOutcome

from .validation import event_list, read_events

Publish = Callable[[list[UsageEvent]], list[PublishOutcome]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class ApiKey:
    """A caller's key and the subscriptions it may report usage for (glob patterns; "*" is all)."""

    name: str
    key: str = field(repr=False)
    subscriptions: tuple[str, ...] = ("*",)

    def allows(self, subscription: str) -> bool:
        return any(fnmatchcase(subscription, pattern) for pattern in self.subscriptions)


@dataclass(frozen=True)
class HttpSettings:
    """Limits and the optional API keys of the HTTP endpoint (none: the route's IAM auth only)."""

    max_body_bytes: int = 1_048_576
    max_events: int = 500
    api_keys: tuple[ApiKey, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, secret_loader: Callable[[str], str] | None = None) -> HttpSettings:
        env = os.environ if env is None else env
        text = env.get("HTTP_API_KEY") or ""
        if not text and env.get("HTTP_API_KEY_SECRET_ARN") and secret_loader is not None:
            text = secret_loader(env["HTTP_API_KEY_SECRET_ARN"])
        return cls(
            max_body_bytes=_positive(env, "HTTP_MAX_BODY_BYTES", cls.max_body_bytes),
            max_events=_positive(env, "HTTP_MAX_EVENTS", cls.max_events),
            api_keys=parse_api_keys(text),
        )


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """One shared key (any subscription), or JSON ``{"<caller>": {"key": "...", "subscriptions": [...]}}``.

    Errors name the caller and the field, never a key.
    """
    text = text.strip()
    if not text:
        return ()
    if not text.startswith("{"):
        return (ApiKey("shared", text),)
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MeteringConfigError("the HTTP API keys start with '{' but are not valid JSON") from None
    keys = []
    for name, entry in document.items() if isinstance(document, dict) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or len(entry["key"]) < 16:
            raise MeteringConfigError(f"HTTP API key {name!r} needs a 'key' string of at least 16 characters")
        patterns = entry.get("subscriptions")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise MeteringConfigError(f"HTTP API key {name!r} needs 'subscriptions': a list of ids or glob patterns")
        keys.append(ApiKey(name, entry["key"], tuple(patterns)))
    if not keys:
        raise MeteringConfigError('the HTTP API keys JSON must map each caller to {"key": ..., "subscriptions": [...]}')
    return tuple(keys)


def handle_request(event: dict[str, Any], settings: HttpSettings, publish: Publish,
                   contract: Contract | None = None) -> tuple[Reply, list[PublishOutcome]]:
    """The reply to one ``POST /v1/events`` (its API Gateway event), and the outcome of each event published."""
    caller = _caller(event.get("headers") or {}, settings.api_keys) if settings.api_keys else None
    if settings.api_keys and caller is None:
        return _error(401, "unauthorized", "a valid API key is required (x-api-key or Authorization: Bearer)"), []
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    except (binascii.Error, ValueError):
        return _error(400, "invalid_body", "body is marked base64 but is not valid base64"), []
    if len(raw) > settings.max_body_bytes:
        return _error(413, "body_too_large", f"body is {len(raw)} bytes; the limit is {settings.max_body_bytes}"), []
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(400, "invalid_json", f"body is not JSON: {exc}"), []
    try:
        items = event_list(document, allow_single=True)
    except ValueError as exc:
        return _error(400, "invalid_body", str(exc)), []
    if not items:
        return _error(400, "no_events", "the request has no events"), []
    if len(items) > settings.max_events:
        return _error(413, "too_many_events", f"{len(items)} events; the limit is {settings.max_events} per request"), []
    events, rejected = read_events(items, contract)
    if rejected:
        errors = {f"events[{r.index}].{name}": why for r in rejected for name, why in r.errors.items()}
        return _error(400, "invalid_events", f"{len(rejected)} of {len(items)} events are invalid", errors=errors), []
    if caller is not None:
        denied = {f"events[{i}].external_subscription_id": "this API key may not report usage for this subscription"
                  for i, e in enumerate(events) if not caller.allows(e.external_subscription_id)}
        if denied:
            return _error(403, "forbidden_subscription", f"{len(denied)} of {len(events)} events are for subscriptions "
                          f"the API key {caller.name!r} does not cover; nothing was published", errors=denied), []
    outcomes = publish(events)
    results = [o.as_dict() for o in outcomes]
    too_large = {f"events[{i}]": o.error for i, o in enumerate(outcomes) if o.status == "rejected"}
    if too_large:
        message = (f"{len(too_large)} of {len(outcomes)} events are too large for NATS and were not published; "
                   "the others were (sending them again is safe)")
        return _error(400, "events_too_large", message, errors=too_large, results=results), outcomes
    failed = sum(1 for o in outcomes if o.status == "failed")
    if failed:
        stored = len(outcomes) - failed
        message = f"NATS did not acknowledge {failed} of {len(outcomes)} events ({stored} stored); retry the request"
        return _error(503, "unavailable", message, results=results), outcomes
    return Reply(202, {"accepted": len(outcomes), "results": results}), outcomes


def _caller(headers: Mapping[str, str], api_keys: tuple[ApiKey, ...]) -> ApiKey | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    presented = lowered.get("x-api-key") or ""
    authorization = lowered.get("authorization") or ""
    if not presented and authorization[:7].lower() == "bearer ":
        presented = authorization[7:].strip()
    # Constant time, and every key compared, so response times tell nothing about any key.
    found = None
    for candidate in api_keys:
        if hmac.compare_digest(presented.encode(), candidate.key.encode()):
            found = candidate
    return found


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": code, "message": message, **extra})


def _positive(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) == 0:
        raise MeteringConfigError(f"{key} must be a positive whole number, got {raw!r}")
    return int(raw)
