"""Lago's wire format for the calls tokenmeter makes: URLs, headers, errors and the answers it reads.

The same as lago-python-client puts on the wire and reads off it (tests/unit/test_lago_wire.py checks each
against the client), written here because importing the client costs lago_sync ~170 ms of cold start: its
package ``__init__`` builds the pydantic model of every Lago resource. Answers are read into small frozen
dataclasses holding only the fields tokenmeter uses; a malformed answer is a ``LagoApiError`` (500), as the
client raises when a body is not the JSON object it expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urljoin

import orjson

BASE_URL = "https://api.getlago.com/"
API_PATH = "api/v1/"
_SUCCESS = frozenset((200, 201, 202, 204))


class LagoApiError(Exception):
    """Lago answered with an error status (or an answer that cannot be read): ``status_code``, the URL and
    the decoded body (Lago's ``{"status", "error", "code", "error_details"}``, or None)."""

    def __init__(self, status_code: int, url: str | None, response: Any, detail: str | None = None):
        super().__init__(response if response is not None else detail)
        self.status_code, self.url, self.response = status_code, url, response
        self.detail = detail or _phrase(status_code)


class LagoRateLimitError(LagoApiError):
    """429: ``reset`` is Lago's ``x-ratelimit-reset``, the seconds until the window resets (None if absent)."""

    def __init__(self, url: str | None, headers: Mapping[str, str]):
        super().__init__(429, url, None)
        self.limit, self.remaining, self.reset = (_int(headers.get(f"x-ratelimit-{name}"))
                                                  for name in ("limit", "remaining", "reset"))


def api_base(api_url: str | None) -> str:
    """``https://host/api/v1/`` from the configured Lago URL (Lago Cloud's when empty)."""
    return urljoin(api_url or BASE_URL, API_PATH)


def url(base: str, *parts: str, query: Mapping[str, Any] | None = None) -> str:
    """A URL under ``base``; parts are joined as given (callers encode ids)."""
    return urljoin(base, "/".join(parts) + (f"?{urlencode(query, doseq=True)}" if query else ""))


def headers(api_key: str) -> dict[str, str]:
    return {"Content-type": "application/json", "Authorization": f"Bearer {api_key}",
            "User-agent": "tokenmeter"}


def check(status: int, request_url: str, response_headers: Mapping[str, str], content: bytes) -> None:
    """Raise the error a non-success status means (the body decoded when it is JSON)."""
    if status in _SUCCESS:
        return
    if status == 429:
        raise LagoRateLimitError(request_url, response_headers)
    raise LagoApiError(status, request_url, decoded(content))


def decoded(content: bytes) -> Any:
    """An answer's JSON, or None when it has none (an empty body, a proxy's HTML page)."""
    try:
        return orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None


def resource(status: int, request_url: str, response_headers: Mapping[str, str], content: bytes,
             key: str) -> dict[str, Any]:
    """The object under ``key`` of a successful answer, e.g. ``{"subscription": {...}}``."""
    check(status, request_url, response_headers, content)
    body = decoded(content)
    found = body.get(key) if isinstance(body, dict) else None
    if not isinstance(found, dict) or not found:
        raise LagoApiError(500, request_url, None, f"Lago's answer has no {key!r} object")
    return found


@dataclass(frozen=True)
class FilterUsage:
    values: dict[str, list[str]]  # property -> the filter's values
    units: Decimal


@dataclass(frozen=True)
class ChargeUsage:
    code: str  # the billable metric's code
    units: Decimal
    filters: tuple[FilterUsage, ...]


@dataclass(frozen=True)
class CurrentUsage:
    """``GET /customers/{id}/current_usage``: the current billing period and each charge's units."""

    from_datetime: str
    to_datetime: str
    charges_usage: tuple[ChargeUsage, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CurrentUsage:
        try:
            charges = tuple(ChargeUsage(str(c["billable_metric"]["code"]), _units(c["units"]), tuple(
                FilterUsage({str(k): [str(v) for v in vs] for k, vs in (f.get("values") or {}).items()},
                            _units(f["units"])) for f in c.get("filters") or ()))
                for c in data.get("charges_usage") or ())
            return cls(str(data["from_datetime"]), str(data["to_datetime"]), charges)
        except (KeyError, TypeError, AttributeError, ValueError, InvalidOperation) as exc:
            raise LagoApiError(500, None, None, f"Lago's current usage cannot be read: {exc!r}") from None


def _units(value: Any) -> Decimal:
    """Lago's units, a decimal string ("1234.0"); a JSON number is read by its text, never as a binary float."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"units {value!r}")
    return Decimal(str(value))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
