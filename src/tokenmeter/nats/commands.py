"""NATS protocol commands written directly: a JetStream publish with its headers, and an ack.

Byte for byte what nats-py's ``publish`` writes for the same arguments (tests/unit/test_nats_client.py
compares them), for ``Client.send``. The header block's fixed part is built once per call site
(``header_prefix``), and only the message id line per message.
"""

from __future__ import annotations

import re

from nats import errors

_CRLF = b"\r\n"
_SUBJECT_INVALID = re.compile(r"[ \t\r\n]")  # what nats-py refuses in a subject it publishes to
_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 token characters
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})


def check_subject(subject: str) -> str:
    """The subject, or nats-py's BadSubjectError for one it would refuse."""
    if not subject or _SUBJECT_INVALID.search(subject):
        raise errors.BadSubjectError
    return subject


def header_key(key: str) -> bytes:
    """``Key: `` for a header line; nats-py's BadHeaderError for a key outside RFC 7230's token characters."""
    key = key.strip()
    if not _HEADER_KEY.fullmatch(key):
        raise errors.BadHeaderError(key)
    return key.encode() + b": "


def header_value(value: str) -> bytes:
    """A header value trimmed and its CR/LF made spaces, as nats-py does: it cannot end the block early."""
    value = value.strip()
    if "\r" in value or "\n" in value:
        value = value.translate(_NEWLINES)
    return value.encode()


def header_prefix(headers: dict[str, str]) -> bytes:
    """The start of a header block (``NATS/1.0`` and these lines): a message adds its own lines and CRLF."""
    lines = (header_key(k) + header_value(v) + _CRLF for k, v in headers.items() if k.strip())
    return b"NATS/1.0\r\n" + b"".join(lines)


def hpub(subject: str, reply: str, header: bytes, payload: bytes) -> bytes:
    """``HPUB``: ``header`` is a whole block (``header_prefix`` + lines + CRLF)."""
    return b"HPUB %s %s %d %d\r\n%s%s\r\n" % (subject.encode(), reply.encode(), len(header),
                                              len(header) + len(payload), header, payload)


def ack(reply: str) -> bytes:
    """Acknowledge a JetStream message: an empty publish to its reply subject, as ``Msg.ack`` sends.

    Not checked as ``check_subject`` checks: the reply came as a token of the server's own MSG line, which
    cannot hold whitespace (``Client.ack_all`` refuses an empty one)."""
    return b"PUB %s  0\r\n\r\n" % reply.encode()
