"""lago_sync's HTTP/1.1 client against real sockets: servers that answer as HTTP allows (fixed length,
chunked, until close, interim answers), close kept-alive connections, stall, speak TLS, or sit behind a proxy."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tokenmeter.shipping.lago_http import HttpError, LagoHttp

HEADERS = {"Content-type": "application/json", "Authorization": "Bearer k-1", "User-agent": "tokenmeter"}


class Server:
    """Answers each request on a connection with the next scripted bytes (a callable may decide; None drops
    the connection instead), and keeps what it was sent. ``close_after``: close a connection after that many
    answers."""

    def __init__(self, answers, close_after: int | None = None, tls: ssl.SSLContext | None = None):
        self.answers, self.close_after, self.tls = list(answers), close_after, tls
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    def url(self, path: str = "/api/v1/events/batch", scheme: str = "http") -> str:
        return f"{scheme}://{'localhost' if scheme == 'https' else '127.0.0.1'}:{self.port}{path}"

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        served = 0
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append((head, await reader.readexactly(length)))
                answer = self.answers.pop(0)
                if answer is None:  # drop the connection without an answer
                    break
                if callable(answer):
                    answer = await answer()
                writer.write(answer)
                await writer.drain()
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_post_is_sent_as_http_1_1_with_the_headers_and_body_and_read_back():
    async def go():
        async with Server([ok(b'{"events":[]}', b"X-RateLimit-Reset: 3\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n")]) as server:
            http = LagoHttp(HEADERS, timeout=2)
            answer = await http.request("POST", server.url(), b'{"events":[1]}')
            await http.aclose()
            return server, answer

    server, answer = run(go())
    head, body = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/v1/events/batch HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines and "Authorization: Bearer k-1" in lines
    assert "Content-Length: 14" in lines and body == b'{"events":[1]}'
    assert answer.status_code == 200 and answer.content == b'{"events":[]}'
    assert answer.headers["x-ratelimit-reset"] == "3" and answer.headers["set-cookie"] == "a=1, b=2"


def test_a_get_carries_its_query_and_no_body_and_the_connection_is_kept():
    async def go():
        async with Server([ok(b"1"), ok(b"2")]) as server:
            http = LagoHttp(HEADERS, timeout=2)
            first = await http.request("GET", server.url("/api/v1/subscriptions?page=2&per_page=100"))
            second = await http.request("GET", server.url("/api/v1/billable_metrics/llm%2Etokens"))
            await http.aclose()
            return server, first, second

    server, first, second = run(go())
    assert server.requests[0][0].startswith(b"GET /api/v1/subscriptions?page=2&per_page=100 HTTP/1.1\r\n")
    assert b"content-length" not in server.requests[0][0].lower()
    assert server.requests[1][0].startswith(b"GET /api/v1/billable_metrics/llm%2Etokens HTTP/1.1\r\n")
    assert (first.content, second.content, server.connections) == (b"1", b"2", 1)


def test_chunked_answers_with_extensions_and_trailers_are_joined():
    chunked = (b"HTTP/1.1 422 Unprocessable Entity\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"7;ext=1\r\n{\"error\r\n5\r\n\":\"x\"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n")
    async def go():
        async with Server([chunked, ok()]) as server:
            http = LagoHttp(HEADERS, timeout=2)
            answer = await http.request("POST", server.url(), b"{}")
            after = await http.request("POST", server.url(), b"{}")  # the connection is still in step
            await http.aclose()
            return answer, after, server.connections

    answer, after, connections = run(go())
    assert (answer.status_code, answer.content) == (422, b'{"error":"x"}')
    assert after.content == b'{"ok":true}' and connections == 1


def test_an_interim_answer_is_skipped_and_a_body_until_close_is_read_whole():
    until_close = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n<h1>down</h1>"
    async def go():
        async with Server([until_close, ok()], close_after=1) as server:
            http = LagoHttp(HEADERS, timeout=2)
            answer = await http.request("POST", server.url(), b"{}")
            after = await http.request("POST", server.url(), b"{}")
            await http.aclose()
            return answer, after, server.connections

    answer, after, connections = run(go())
    assert (answer.status_code, answer.content) == (503, b"<h1>down</h1>")
    assert after.status_code == 200 and connections == 2  # read until close: not kept


def test_a_kept_connection_the_server_closed_while_idle_is_not_used():
    async def go():
        async with Server([ok(b"1"), ok(b"2")], close_after=1) as server:
            http = LagoHttp(HEADERS, timeout=2)
            first = await http.request("POST", server.url(), b"a")
            await asyncio.sleep(0.05)  # the server has closed the kept-alive connection by now
            second = await http.request("POST", server.url(), b"b")
            await http.aclose()
            return server, first, second

    server, first, second = run(go())
    assert (first.content, second.content) == (b"1", b"2")
    assert [body for _, body in server.requests] == [b"a", b"b"] and server.connections == 2


def test_a_request_dropped_on_a_kept_connection_is_sent_once_more_on_a_new_one():
    # A keep-alive timeout racing the request: the server reads it and closes without a byte of answer.
    async def go():
        async with Server([ok(b"1"), None, ok(b"2")]) as server:
            http = LagoHttp(HEADERS, timeout=2)
            first = await http.request("POST", server.url(), b"a")
            second = await http.request("POST", server.url(), b"b")
            await http.aclose()
            return server, first, second

    server, first, second = run(go())
    assert (first.content, second.content) == (b"1", b"2")
    assert [body for _, body in server.requests] == [b"a", b"b", b"b"] and server.connections == 2


def failed_request(answers, timeout: float = 2.0) -> tuple[HttpError, int]:
    """The error one POST ends in against a server scripted with ``answers``, and how many requests it got."""
    async def go():
        async with Server(answers) as server:
            http = LagoHttp(HEADERS, timeout=timeout)
            with pytest.raises(HttpError) as raised:
                await http.request("POST", server.url(), b"{}")
            await http.aclose()
            return raised.value, len(server.requests)

    return run(go())


def test_a_server_that_closes_without_answering_a_new_connection_is_an_error_not_a_retry():
    error, sent = failed_request([None])
    assert error.kind == "dropped" and sent == 1


def test_a_stalled_answer_times_out():
    async def stall():
        await asyncio.sleep(5)
        return ok()

    error, sent = failed_request([stall], timeout=0.3)
    assert error.kind == "timeout" and sent == 1


def test_a_port_nobody_listens_on_is_refused():
    with socket.socket() as probe:  # a free port, closed again
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def go():
        http = LagoHttp(HEADERS, timeout=1)
        with pytest.raises(HttpError) as refused:
            await http.request("POST", f"http://127.0.0.1:{port}/x", b"{}")
        return refused.value

    assert run(go()).kind == "refused"


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
                                     b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_an_answer_that_is_not_http_is_a_protocol_error(garbage):
    assert failed_request([garbage])[0].kind == "protocol"


@pytest.mark.parametrize("url", ["ftp://lago/api/v1/events", "http:///api/v1/events", "http://lago:99999/x",
                                 "http://lago:port/x"])
def test_a_url_that_is_not_http_with_a_host_and_port_is_an_error_for_that_request(url):
    async def go():
        with pytest.raises(HttpError) as raised:
            await LagoHttp(HEADERS, timeout=1).request("GET", url)
        return raised.value

    assert run(go()).kind == "url"


def test_an_internationalised_host_name_is_looked_up_in_its_idna_form_not_a_crash():
    # пример.invalid is xn--e1afmkfd.invalid on the wire; .invalid never resolves (RFC 2606).
    async def go():
        with pytest.raises(HttpError) as raised:
            await LagoHttp(HEADERS, timeout=2).request("GET", "http://пример.invalid:8080/api/v1/x")
        return raised.value

    assert run(go()).kind in ("refused", "timeout")  # not a UnicodeEncodeError out of the request line


def test_a_key_with_a_line_break_or_beyond_ascii_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError, match="line break"):
        LagoHttp({"Authorization": "Bearer k-1\r\nX-Evil: 1"}, timeout=1)
    with pytest.raises(ValueError, match="outside ASCII"):
        LagoHttp({"Authorization": "Bearer kéy"}, timeout=1)


def _self_signed(tmp_path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def test_tls_is_verified_against_the_configured_bundle(tmp_path, monkeypatch):
    server_tls, bundle = _self_signed(tmp_path)

    async def go():
        async with Server([ok(b"secure")], tls=server_tls) as server:
            http = LagoHttp(HEADERS, timeout=2)
            answer = await http.request("POST", server.url(scheme="https"), b"{}")
            await http.aclose()
            return answer

    with pytest.raises(HttpError) as untrusted:  # the system's CAs do not know our certificate
        run(go())
    assert untrusted.value.kind == "refused" and "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    assert run(go()).content == b"secure"


def test_with_a_proxy_in_the_environment_requests_go_through_it(monkeypatch):
    relayed: list[bytes] = []

    async def proxy(reader, writer) -> None:
        # A forward proxy for plain HTTP: the request line names the whole URL; pass it on and the answer back.
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length)
        relayed.append(head.split(b"\r\n")[0])
        target = head.split(b" ")[1].decode()
        host, port = target.split("/")[2].split(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        upstream_writer.write(head.replace(target.encode(), b"/" + target.split("/", 3)[3].encode(), 1) + body)
        answer = await upstream_reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in answer.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        writer.write(answer + await upstream_reader.readexactly(length))
        await writer.drain()
        writer.close()
        upstream_writer.close()

    async def go():
        relay = await asyncio.start_server(proxy, "127.0.0.1", 0)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{relay.sockets[0].getsockname()[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with Server([ok(b"via proxy")]) as server:
            http = LagoHttp(HEADERS, timeout=2)
            answer = await http.request("POST", server.url(), b'{"a":1}')
            await http.aclose()
        relay.close()
        return server, answer

    server, answer = run(go())
    assert answer.status_code == 200 and answer.content == b"via proxy"
    assert relayed == [f"POST http://127.0.0.1:{server.port}/api/v1/events/batch HTTP/1.1".encode()]
    assert server.requests[0][1] == b'{"a":1}' and b"Authorization: Bearer k-1" in server.requests[0][0]
