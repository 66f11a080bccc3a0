"""A small HTTP/1.1 client for Lago's JSON API: kept-alive connections, TLS, fixed-length and chunked answers.

httpx (with httpcore, h11 and anyio beneath it) spent ~800 us of CPU on each batch POST, a third of
lago_sync's CPU at 20,000 events/s; an exchange here costs well under 100 us. Lago's API needs little:
requests with a JSON body or none, answers with ``Content-Length`` or chunked, no compression (none is
asked for), no redirects (httpx follows none by default either). Where the environment routes Lago's URL
through a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, minus ``NO_PROXY``), requests go through
httpx as before, which speaks to proxies.

TLS is verified against the system's CAs (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` as OpenSSL reads them),
or certifi's bundle where the system has none. A request has ``timeout`` seconds to connect and as long
again to be written and answered. A kept-alive connection the server closed while it sat idle fails
before any answer: the request is sent once more on a new connection (safe for Lago's batch POST: ids are
deterministic, a copy is ``value_already_exist``).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NO_BODY = frozenset((204, 304))


class HttpError(Exception):
    """No usable answer: refused, dropped, timed out, or not HTTP. ``kind`` names which, for logs."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(slots=True)
class Answer:
    """A response: its status, the URL asked, headers (names in lower case, repeats joined), the body."""

    status_code: int
    url: str
    headers: dict[str, str]
    content: bytes


class LagoHttp:
    """Requests to one or more origins on kept-alive connections; ``await aclose()`` at the end."""

    def __init__(self, headers: dict[str, str], timeout: float):
        self.timeout = timeout
        self._fixed = b""
        self.set_headers(headers)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._proxied: dict[tuple[str, str], bool] = {}
        self._httpx: Any = None

    def set_headers(self, headers: dict[str, str]) -> None:
        """Headers sent with every request (a rotated API key replaces the old one)."""
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0"):
                raise ValueError(f"the {name} header holds a line break or NUL (a pasted key with a newline?)")
            if not (name + value).isascii():
                raise ValueError(f"the {name} header holds characters outside ASCII (a mistyped key?)")
        self._headers = dict(headers)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._fixed = ("Accept: */*\r\n" + lines).encode("ascii")

    async def request(self, method: str, url: str, content: bytes | None = None) -> Answer:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except (ValueError, KeyError):
            port = 0
        if not port or not host:
            raise HttpError("url", f"not an http(s) URL with a host and a valid port: {url}")
        if self._through_proxy(scheme, host):
            return await self._via_httpx(method, url, content)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rpartition("@")[2]
        if not authority.isascii():  # an internationalised host name goes on the wire in its IDNA form
            try:
                authority = authority.encode("idna").decode("ascii")
            except UnicodeError:
                raise HttpError("url", f"not a host name HTTP can carry: {url}") from None
        head = f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("latin-1") + self._fixed
        if content is not None:
            head += b"Content-Length: %d\r\n" % len(content)
        message = head + b"\r\n" + (content or b"")
        key = (scheme, host, port)
        while True:
            connection, reused = await self._connection(key)
            try:
                async with asyncio.timeout(self.timeout):
                    status, headers, body, keep = await connection.exchange(message, method)
            except _Stale:
                if reused:
                    continue  # closed while idle: once more, on a new connection (the loop opens one)
                raise HttpError("dropped", "the server closed the connection without an answer") from None
            except TimeoutError:
                connection.close()
                raise HttpError("timeout", f"no answer within {self.timeout:g} s") from None
            except asyncio.CancelledError:
                connection.close()  # mid-exchange: the connection cannot be used again
                raise
            except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
                connection.close()
                raise HttpError("dropped" if isinstance(exc, (OSError, EOFError)) else "protocol",
                                f"{type(exc).__name__}: {exc}") from None
            if keep:
                self._idle.setdefault(key, []).append(connection)
            else:
                connection.close()
            return Answer(status, url, headers, body)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        if self._httpx is not None:
            await self._httpx.aclose()

    async def _connection(self, key: tuple[str, str, int]) -> tuple[_Connection, bool]:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection, True
            connection.close()
        scheme, host, port = key
        tls = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(host, port, ssl=tls,
                                                               server_hostname=host if tls else None)
        except TimeoutError:
            raise HttpError("timeout", f"could not connect to {host}:{port} within {self.timeout:g} s") from None
        except OSError as exc:
            raise HttpError("refused", f"could not connect to {host}:{port}: {exc}") from None
        return _Connection(reader, writer), False

    def _context(self) -> ssl.SSLContext:
        # Made on the first https request, not at import: loading the CA bundle costs ~20 ms of cold start.
        if self._tls is None:
            self._tls = _tls_context()
        return self._tls

    def _through_proxy(self, scheme: str, host: str) -> bool:
        found = self._proxied.get((scheme, host))
        if found is None and not any(name.lower().endswith("_proxy") for name in os.environ):
            found = self._proxied[(scheme, host)] = False  # the usual case, without urllib.request's import
        if found is None:
            import urllib.request  # ~3 ms of cold start that only a proxied environment pays

            proxies = urllib.request.getproxies_environment()
            found = bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass_environment(host)
            self._proxied[(scheme, host)] = found
        return found

    async def _via_httpx(self, method: str, url: str, content: bytes | None) -> Answer:
        import httpx  # only where a proxy is configured

        if self._httpx is None:
            self._httpx = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._httpx.request(method, url, content=content, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise HttpError("timeout", f"{type(exc).__name__}: {exc}") from None
        except httpx.HTTPError as exc:
            raise HttpError("dropped", f"{type(exc).__name__}: {exc}") from None
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, url, headers, response.content)


def _tls_context() -> ssl.SSLContext:
    """The system's CAs as OpenSSL finds them (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` included); certifi's
    bundle, which httpx trusts, where the system has none."""
    context = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    if paths.cafile is None and paths.capath is None:
        try:
            import certifi
        except ImportError:
            return context
        context.load_verify_locations(certifi.where())
    return context


class _Stale(Exception):
    """The connection was closed before any byte of an answer came."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, message: bytes, method: str) -> tuple[int, dict[str, str], bytes, bool]:
        reader = self.reader
        try:
            self.writer.write(message)
            await self.writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            raise _Stale from exc
        except asyncio.IncompleteReadError as exc:
            self.close()
            if not exc.partial:
                raise _Stale from exc
            raise
        status, version, headers = _head(head)
        while 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            status, version, headers = _head(await reader.readuntil(b"\r\n\r\n"))
        keep = version == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
        if method == "HEAD" or status in _NO_BODY:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:  # the body ends when the server closes the connection
            body, keep = await reader.read(), False
        return status, headers, body, keep


def _head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, HTTP version and headers of an answer's head; ValueError if it is not HTTP/1.x."""
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line: {line[:80]!r}")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return int(rest[:3]), version, headers


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any, end with an empty line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("malformed chunked body")
