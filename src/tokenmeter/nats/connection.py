"""One NATS connection and one event loop per warm Lambda environment.

nats-py binds its reader, flusher and pinger tasks to the loop that was running
when it connected; a new loop per invocation (``asyncio.run``) leaves publishes
that time out yet were stored. So the loop lives as long as the environment,
and every invocation runs on it with ``run``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from aws_lambda_powertools import Logger

from tokenmeter.core.secrets import load_secret

from .client import Client
from .credentials import connect_options
from .exceptions import NatsUnavailable, describe
from .settings import NatsSettings
from .streams import ensure_consumer, ensure_stream

logger = Logger(child=True)
T = TypeVar("T")

_HEALTH_FLUSH_SECONDS = 0.5
_CLOSE_SECONDS = 1.0
# Publishes pipelined before publish_async waits for acknowledgements.
MAX_PENDING_PUBLISHES = 4000


class ManagedConnection:
    """Lazily connects, checks the connection at the start of each run and after an idle gap, and replaces
    a dead one."""

    def __init__(self, settings: NatsSettings, *, secret_loader: Callable[[str], str] = load_secret):
        self.settings = settings
        self._secret_loader = secret_loader
        self.loop = asyncio.new_event_loop()
        # Powertools' async batch processor runs on the current loop: make it this one.
        asyncio.set_event_loop(self.loop)
        self._nc: Any = None
        self._js: Any = None
        self.lost: asyncio.Event | None = None  # set when the current connection drops
        self._last_used = 0.0
        self._provisioned = False
        self._lock: asyncio.Lock | None = None
        self._failure: NatsUnavailable | None = None
        self._checked = False  # the connection answered a flush in this run
        self.connects = 0

    def run(self, work: Awaitable[T]) -> T:
        """Run one invocation's work on the environment's loop (never ``asyncio.run``)."""
        self._failure = None  # each invocation tries to connect afresh
        # The loop stood still since the last run: the server may have gone meanwhile (restarted, or the
        # environment was frozen), and the client has not read its goodbye. Check before trusting it.
        self._checked = False
        return self.loop.run_until_complete(work)

    async def jetstream(self) -> Any:
        """A JetStream context on a live connection, with the stream and consumer in place.

        Raises NatsUnavailable; a failed attempt is remembered until the next
        ``run``, so callers within one invocation do not each wait out a connect timeout.
        """
        self._lock = self._lock or asyncio.Lock()
        # The loop stood still since the last invocation: let the client read what
        # arrived meanwhile (a server's goodbye) before trusting is_connected.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        async with self._lock:
            if self._nc is not None and not await self._alive():
                await self._discard()
            if self._nc is None:
                if self._failure is not None:
                    raise self._failure
                try:
                    await self._connect()
                except NatsUnavailable as exc:
                    self._failure = exc
                    raise
                self._failure = None
            self._last_used = time.monotonic()
            return self._js

    @property
    def client(self) -> Any:
        """The current nats-py client, or None when not connected."""
        return self._nc

    async def close(self) -> None:
        await self._discard()

    async def _alive(self) -> bool:
        nc = self._nc
        if not nc.is_connected:
            return False
        if self._checked and time.monotonic() - self._last_used < self.settings.idle_check_seconds:
            return True
        # A silently dropped flow (NAT idle timeout, a frozen environment) or a server that went between
        # two runs (its goodbye still unread, however soon after the last) still says connected.
        try:
            await nc.flush(timeout=_HEALTH_FLUSH_SECONDS)
            self._checked = True
            return True
        except Exception as exc:  # any failure means this connection cannot be trusted
            logger.warning("NATS connection failed its health check; reconnecting", extra={"error": type(exc).__name__})
            return False

    async def _connect(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {}
        if settings.creds_secret_arn:
            options.update(connect_options(self._secret_loader(settings.creds_secret_arn)))
        if settings.ca_file or settings.url.startswith("tls://"):
            options["tls"] = ssl.create_default_context(cafile=settings.ca_file)
        lost = asyncio.Event()

        async def on_disconnect() -> None:
            lost.set()

        try:
            nc = await asyncio.wait_for(
                _connect(
                    settings.url,
                    name="tokenmeter",
                    connect_timeout=settings.connect_timeout_seconds,
                    # A lost connection is replaced on next use, within our deadlines; and
                    # an unreachable server fails the connect at once instead of retrying
                    # for minutes (nats-py's defaults: 60 attempts, 2 s apart).
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_on_error,
                    disconnected_cb=on_disconnect,
                    **options,
                ),
                timeout=settings.connect_timeout_seconds * 2,
            )
        except Exception as exc:  # nats-py raises many types for one cause: we cannot reach NATS
            raise NatsUnavailable(f"cannot connect to NATS at {redact(settings.url)}: {describe(exc)}") from None
        self._nc, self.lost, self._checked = nc, lost, True
        self._js = nc.jetstream(timeout=5, publish_async_max_pending=MAX_PENDING_PUBLISHES)
        self.connects += 1
        if not self._provisioned:
            await ensure_stream(self._js, settings)
            await ensure_consumer(self._js, settings)
            self._provisioned = True
        logger.info("connected to NATS", extra={"url": redact(settings.url), "connects": self.connects})

    async def _discard(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), timeout=_CLOSE_SECONDS)
            except Exception as exc:  # closing a broken connection may fail; it is gone either way
                logger.debug("closing NATS connection failed", extra={"error": type(exc).__name__})


def redact(url: str) -> str:
    """A NATS URL without the user and password it may carry."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))



async def _on_error(exc: Exception) -> None:
    logger.warning("NATS client error", extra={"error": describe(exc)})


async def _connect(url: str, **options: Any) -> Client:
    """nats.connect, with the client that reads headers faster (tokenmeter.nats.client)."""
    nc = Client()
    await nc.connect(url, **options)
    return nc
