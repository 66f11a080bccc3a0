"""Lago's API with outcomes tokenmeter can act on.

Lago's wire format (URLs, headers, JSON, error shapes) is lago-python-client's, kept in ``lago_wire``; we
turn answers into "held by Lago", "already billed", "rejected (dead letter)" or "try again later".
Departures from the client, each for a reason:
- requests go out on kept-alive connections (``lago_http``, a small HTTP/1.1 client: httpx cost a third
  of lago_sync's CPU) with an explicit timeout, at most ``concurrency`` at once, on the event loop
  lago_sync already runs for NATS (nothing blocks it): the client's module-level ``httpx.post``/``get``
  build a new client, and load a TLS context (~40 ms), per request; bench/lago_sync_bench.py measured
  ~1,000 events/s through it against ~8,700/s for raw batch POSTs to the same emulator;
- no 429 retries of its own: they can sleep past the Lambda deadline, so we
  wait as Lago says only while that leaves the deadline's margin;
- every id in a path is percent-encoded (the client joins ids in raw): Lago's
  routes take an id segment without ``/`` and Rails' default customer segment
  also stops at ``.``, so ``.`` is encoded too (config/routes.rb);
- a 401 re-reads the key once (a rotated secret), then fails loudly, as does a 403.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from tokenmeter.core import UsageEvent, parse_rfc3339_ms
from tokenmeter.core.secrets import load_secret

from . import lago_wire as wire
from .lago_http import Answer, HttpError, LagoHttp
from .lago_wire import CurrentUsage, LagoApiError, LagoRateLimitError

MAX_BATCH = 100
Chunk = list[tuple[Any, UsageEvent]]  # (whatever the caller keeps beside it, the event)
_CACHE_SECONDS = 300.0
_MISSING_CACHE_SECONDS = 30.0
_LIST_FROM = 8  # uncached subscriptions in one batch from which Lago's list is read instead
_LIST_PAGE = 100  # subscriptions per page of that list (Lago's largest page)
# GET /subscriptions/{id} finds only an active one unless asked for another status.
_STATUSES = ("active", "terminated", "pending", "canceled")


@dataclass
class ShipResult:
    """Per event index of one batch: what Lago holds now, and what it never will."""

    stored: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)  # value_already_exist: billed before
    rejected: dict[int, str] = field(default_factory=dict)  # Lago's reason; these are dead-lettered
    retry: list[int] = field(default_factory=list)  # nothing held: try again later
    retry_reason: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class LagoSubscription:
    """What shipping and reconciliation need of a subscription (times in ms since the epoch)."""

    external_id: str
    external_customer_id: str
    status: str  # active, pending, terminated, canceled
    started_ms: int | None
    ended_ms: int | None  # terminated_at or canceled_at
    period_start_ms: int | None  # the current billing period (active subscriptions only)
    period_end_ms: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LagoSubscription:
        """From Lago's subscription object; a time Lago gives that is not RFC 3339 is an unreadable answer."""
        def ms(name: str) -> int | None:
            text = data.get(name)
            return parse_rfc3339_ms(text) if text else None

        def text(name: str, default: str) -> str:
            value = data.get(name)
            return str(value) if value else default

        try:
            period_end = ms("current_billing_period_ending_at")
            return cls(text("external_id", ""), text("external_customer_id", ""), text("status", "active"),
                       ms("started_at"), ms("terminated_at") or ms("canceled_at"),
                       ms("current_billing_period_started_at"), None if period_end is None else period_end + 999)
        except (TypeError, ValueError) as exc:
            raise LagoApiError(500, None, None, f"Lago's subscription cannot be read: {exc}") from None


class LagoUnavailable(Exception):
    """Raised when Lago cannot answer a lookup now (network, 5xx, rate limit), or refuses it (``status``)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class LagoAuthError(Exception):
    """Raised when Lago refuses the API key (401, also after re-reading it) or its permissions (403)."""


def path_id(value: str) -> str:
    """An id as one path segment: every reserved byte percent-encoded, ``.`` included."""
    return quote(value, safe="").replace(".", "%2E")


class LagoApi:
    """Lago's API for one event loop (lago_sync keeps one per Lambda environment)."""

    def __init__(self, api_url: str, api_key: str, timeout: float = 5.0, concurrency: int = 4,
                 reload_key: Callable[[], str] | None = None, usage_rate_per_second: float = 180.0,
                 read_rate_per_second: float = 45.0, events_rate_per_second: float = 450.0):
        self._origin = wire.api_base(api_url)
        self._batch_url = wire.url(self._origin, "events", "batch")
        self._key, self._reload_key = api_key, reload_key
        self._http = LagoHttp(wire.headers(api_key), timeout)
        # Batches are independent (each transaction id stands alone), so a few go out at once.
        self._slots = asyncio.Semaphore(concurrency)
        self._subscriptions: dict[str, tuple[float, LagoSubscription | None]] = {}
        self._metrics: dict[str, tuple[float, Any]] = {}
        # Lago Cloud's limits per organization: event posts 500 requests/s, current usage 200/s, other reads
        # 50/s (a margin kept). Batches go out ``concurrency`` at once, so their pace allows that burst.
        self._usage_pace, self._read_pace = Pace(usage_rate_per_second), Pace(read_rate_per_second)
        self._events_pace = Pace(events_rate_per_second, burst=concurrency)

    @classmethod
    def configured(cls, settings: Any, concurrency: int) -> LagoApi:
        """The client lago_sync's or reconcile's settings describe (``lago_api_url``, ``lago_api_key``,
        ``lago_timeout_seconds``, ``lago_api_key_secret_arn``): a key from Secrets Manager is read again after
        a 401, so a rotated key is picked up."""
        arn = settings.lago_api_key_secret_arn
        return cls(settings.lago_api_url, settings.lago_api_key, settings.lago_timeout_seconds, concurrency,
                   reload_key=(lambda: load_secret(arn, fresh=True)) if arn else None)

    async def close(self) -> None:
        await self._http.aclose()

    # --- transport ---
    async def _send(self, method: str, url: str, content: bytes | None = None) -> Answer:
        """One request; a 401 re-reads the key once and retries; 401 again or 403 is LagoAuthError."""
        key = self._key
        async with self._slots:
            response = await self._http.request(method, url, content=content)
            if response.status_code == 401 and self._reload_key is not None and self._rotate(key):
                response = await self._http.request(method, url, content=content)
        if response.status_code == 401:
            raise LagoAuthError("Lago refused the API key (401): check LAGO_API_KEY / its secret")
        if response.status_code == 403:
            body = wire.decoded(response.content)
            code = body.get("code", "forbidden") if isinstance(body, dict) else "forbidden"
            raise LagoAuthError(f"Lago's API key lacks a permission (403 {code})")
        return response

    def _rotate(self, used: str) -> bool:
        """Read the key again; True when it differs from the one Lago refused (another request may have)."""
        if self._key != used:
            return True
        try:
            fresh = (self._reload_key() or "").strip()  # type: ignore[misc]
        except Exception:  # the secret cannot be read now: the 401 stands
            return False
        if not fresh or fresh == used:
            return False
        self._key = fresh
        self._http.set_headers(wire.headers(fresh))
        return True

    async def _post_batch(self, events: list[UsageEvent]) -> None:
        """POST /events/batch as lago-python-client's batch_create does; raises LagoApiError.

        The body is the JSON of the events we already validated (the client's models of them add only nulls).
        """
        body = orjson.dumps({"events": [e.as_dict() for e in events]})
        await self._events_pace.turn()
        _check(await self._send("POST", self._batch_url, body))

    async def _get(self, path: tuple[str, ...], key: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET a resource's object (the one under ``key``); ids are encoded by callers."""
        await (self._usage_pace if path[-1] == "current_usage" else self._read_pace).turn()
        response = await self._send("GET", wire.url(self._origin, *path, query=query))
        return wire.resource(response.status_code, response.url, response.headers, response.content, key)

    async def _list(self, path: str, query: dict[str, Any], what: str) -> dict[str, Any]:
        """GET one page of a list; raises LagoUnavailable saying ``what`` was read."""
        await self._read_pace.turn()
        try:
            response = await self._send("GET", wire.url(self._origin, path, query=query))
            _check(response)
            body = orjson.loads(response.content)
        except HttpError as exc:
            raise LagoUnavailable(f"{what}: {exc}") from None
        except (LagoApiError, orjson.JSONDecodeError) as exc:
            raise LagoUnavailable(f"{what}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise LagoUnavailable(f"{what}: the answer is not a JSON object")
        return body

    # --- shipping ---
    async def ship_all(self, chunks: list[list[UsageEvent]], deadline: float) -> list[ShipResult | LagoAuthError]:
        """Ship several batches of at most 100 concurrently; results in the same order."""
        async def ship(chunk: list[UsageEvent]) -> ShipResult | LagoAuthError:
            try:
                return await self.ship(chunk, deadline)
            except LagoAuthError as exc:
                return exc

        return list(await asyncio.gather(*(ship(chunk) for chunk in chunks)))

    async def ship(self, events: list[UsageEvent], deadline: float) -> ShipResult:
        """Ship at most 100 events; a 422 batch is retried without the events Lago named.

        ``deadline`` is the time.monotonic() by which the run must be done with Lago (its margin taken).
        """
        result = ShipResult()
        pending = list(range(len(events)))
        while pending:
            try:
                await self._post_batch([events[i] for i in pending])
                result.stored.extend(pending)
                return result
            except LagoRateLimitError as exc:
                reset = float(exc.reset or 1)
                if time.monotonic() + reset < deadline:
                    await asyncio.sleep(reset)
                    continue
                return _retry(result, pending, "rate_limited", reset)
            except LagoApiError as exc:
                details = exc.response.get("error_details") if isinstance(exc.response, dict) else None
                if exc.status_code != 422 or not isinstance(details, dict) or not all(k.isdigit() for k in details):
                    return _retry(result, pending, f"lago {exc.status_code}", None)
                still = []
                for position, index in enumerate(pending):
                    errors = details.get(str(position))
                    if errors is None:
                        still.append(index)
                    elif errors == {"transaction_id": ["value_already_exist"]}:
                        result.already.append(index)
                    else:
                        result.rejected[index] = _reason(errors)
                pending = still
            except HttpError as exc:  # timeouts, refused and dropped connections
                return _retry(result, pending, f"network: {exc.kind}", None)
        return result

    # --- lookups ---
    async def subscription(self, external_id: str) -> LagoSubscription | None:
        """The subscription in its most relevant status (cached), or None if Lago has none by that id.

        An active subscription is cached no longer than its billing period lasts: the next lookup sees the
        period that follows.
        """
        entry = self._subscriptions.get(external_id)
        now = time.monotonic()
        if entry and now < entry[0]:
            return entry[1]
        found = None
        for status in _STATUSES:
            query = None if status == "active" else {"status": status}
            try:
                found = LagoSubscription.from_json(
                    await self._get(("subscriptions", path_id(external_id)), "subscription", query))
                break
            except LagoApiError as exc:
                if exc.status_code != 404:
                    raise LagoUnavailable(f"subscription lookup: Lago answered {exc.status_code}") from None
            except HttpError as exc:
                raise LagoUnavailable(f"subscription lookup: {exc}") from None
        self._subscriptions[external_id] = (now + _cache_seconds(found), found)
        return found

    async def look_up_subscriptions(self, external_ids: set[str]) -> None:
        """Cache many subscriptions with Lago's list of active ones (a page of 100 a paced read) rather
        than one paced read apiece, when at least ``_LIST_FROM`` are not cached and the list has no more pages
        than a quarter of them (its first page says). What the list lacks (ended, pending or unknown
        subscriptions) and any failure are left to ``subscription()``, one by one."""
        now = time.monotonic()
        missing = {i for i in external_ids if not ((entry := self._subscriptions.get(i)) and now < entry[0])}
        if len(missing) < _LIST_FROM:
            return
        wanted, page, pages = len(missing), 1, 1
        try:
            while page <= pages and missing:
                body = await self._list("subscriptions", {"page": page, "per_page": _LIST_PAGE}, "subscription list")
                for item in body.get("subscriptions") or []:
                    found = LagoSubscription.from_json(item) if isinstance(item, dict) else None
                    if found is not None and found.status == "active":
                        self._subscriptions[found.external_id] = (time.monotonic() + _cache_seconds(found), found)
                        missing.discard(found.external_id)
                pages = int((body.get("meta") or {}).get("total_pages") or 1)
                if pages * 4 > wanted:
                    return
                page += 1
        except (LagoUnavailable, LagoApiError, LagoAuthError, TypeError, ValueError):
            return

    def cached_subscription(self, external_id: str) -> LagoSubscription | None:
        """The subscription as last looked up (None if never), without asking Lago."""
        entry = self._subscriptions.get(external_id)
        return entry[1] if entry else None

    def forget_subscription(self, external_id: str) -> None:
        self._subscriptions.pop(external_id, None)

    async def metric_exists(self, code: str) -> bool:
        """Whether Lago has the billable metric (cached)."""
        entry = self._metrics.get(code)
        if entry and time.monotonic() < entry[0]:
            return entry[1] is not None
        try:
            found = await self._get(("billable_metrics", path_id(code)), "billable_metric")
        except LagoApiError as exc:
            if exc.status_code != 404:
                raise LagoUnavailable(f"billable_metric lookup: Lago answered {exc.status_code}") from None
            found = None
        except HttpError as exc:
            raise LagoUnavailable(f"billable_metric lookup: {exc}") from None
        self._metrics[code] = (time.monotonic() + (_CACHE_SECONDS if found else _MISSING_CACHE_SECONDS), found)
        return found is not None

    async def current_usage(self, customer: str, subscription: str) -> CurrentUsage:
        """GET current_usage, within the configured rate (Lago Cloud allows 200 requests/s)."""
        try:
            return CurrentUsage.from_json(await self._get(("customers", path_id(customer), "current_usage"),
                                                          "customer_usage", {"external_subscription_id": subscription}))
        except LagoApiError as exc:
            raise LagoUnavailable(f"current usage of {subscription}: Lago answered {exc.status_code}",
                                  exc.status_code) from None
        except HttpError as exc:
            raise LagoUnavailable(f"current usage of {subscription}: {exc}") from None

    async def active_subscriptions(self, page: int, per_page: int = 100) -> tuple[dict[str, str], int]:
        """One page of Lago's active subscriptions: (external id -> external customer id, pages in all)."""
        body = await self._list("subscriptions", {"page": page, "per_page": per_page}, "subscription list")
        found = {str(s.get("external_id")): str(s.get("external_customer_id"))
                 for s in body.get("subscriptions") or [] if s.get("status", "active") == "active"}
        return found, int((body.get("meta") or {}).get("total_pages") or 1)

    async def events(self, subscription: str, code: str, from_ms: int, to_ms: int, page: int = 1,
                     per_page: int = 100) -> tuple[list[dict[str, Any]], int]:
        """GET /events of one subscription and code timestamped in [from_ms, to_ms]: (page, total count)."""
        query = {"external_subscription_id": subscription, "code": code, "timestamp_from": _iso_ms(from_ms),
                 "timestamp_to": _iso_ms(to_ms), "page": page, "per_page": per_page}
        body = await self._list("events", query, f"events of {subscription}")
        return body.get("events") or [], int((body.get("meta") or {}).get("total_count") or 0)


class Pace:
    """At most ``rate`` turns a second on average, and at most ``burst`` at once (each caller waits its turn).

    The generic cell rate algorithm: each turn moves a theoretical time on by 1/rate; a turn waits while that
    time runs more than ``burst - 1`` intervals ahead of now. Callers take their turns one after another, each
    reckoned from when the one before really went: had each reserved its time on arrival, a pause of the process
    (a busy host, Lambda's share of a CPU) would let every turn that fell due during it out at once.
    """

    def __init__(self, rate: float, burst: int = 1):
        self._interval = 1.0 / rate
        self._ahead = (burst - 1) * self._interval
        self._next = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock  # made on the first turn, for the loop it is taken on

    async def turn(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # (a lock serves the loop it first waited on: one per loop the client is used on)
            self._loop, self._lock = loop, asyncio.Lock()
        async with self._lock:
            now = time.monotonic()
            wait = self._next - self._ahead - now
            if wait > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
            self._next = max(self._next, now) + self._interval


def _cache_seconds(found: LagoSubscription | None) -> float:
    if found is None:
        return _MISSING_CACHE_SECONDS
    if found.period_end_ms is None:
        return _CACHE_SECONDS
    left = (found.period_end_ms - time.time() * 1000) / 1000
    # A period Lago says is over by our clock (clocks differ): look again soon, not on every event.
    return min(_CACHE_SECONDS, left + 1) if left > 0 else _MISSING_CACHE_SECONDS


def _check(response: Answer) -> None:
    wire.check(response.status_code, response.url, response.headers, response.content)


def _reason(errors: Any) -> str:
    """A per-index error: fields with their codes, or Lago's plain message (a failed metric expression)."""
    if isinstance(errors, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
    return str(errors)


def _iso_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _retry(result: ShipResult, pending: list[int], reason: str, after: float | None) -> ShipResult:
    result.retry, result.retry_reason, result.retry_after = list(pending), reason, after
    return result


def chunks_of(items: Chunk) -> list[Chunk]:
    """Batches of at most 100, never two events with one transaction id in a batch: Lago's Postgres store
    matches a batch's rows by transaction id alone, so the second would read as already billed."""
    if len({item[1].transaction_id for item in items}) == len(items):  # the usual fetch, no id twice: in order
        return [items[start:start + MAX_BATCH] for start in range(0, len(items), MAX_BATCH)]
    chunks: list[Chunk] = []
    ids: list[set[str]] = []
    first_open = 0  # chunks before it are full: an item never looks at them again
    for item in items:
        transaction_id = item[1].transaction_id
        for position in range(first_open, len(chunks)):
            if len(chunks[position]) < MAX_BATCH and transaction_id not in ids[position]:
                break
        else:
            position = len(chunks)
            chunks.append([])
            ids.append(set())
        chunks[position].append(item)
        ids[position].add(transaction_id)
        while first_open < len(chunks) and len(chunks[first_open]) >= MAX_BATCH:
            first_open += 1
    return chunks
