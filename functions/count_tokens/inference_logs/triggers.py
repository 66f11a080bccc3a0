"""Decode the two triggers into raw records: CloudWatch Logs subscriptions and S3 objects."""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_plus

import orjson

from tokenmeter_core.dead_letters import DeadLetter

from .records import (
    DECODE_ERROR,
    EMPTY_OBJECT,
    MALFORMED_JSON,
    OBJECT_MISSING,
    PLATFORM_LINE,
    UNKNOWN_TRIGGER,
    RawRecord,
    Skipped,
    decode_json,
)

Item = RawRecord | DeadLetter | Skipped

# Lines the Lambda platform writes into every function's log group.
_PLATFORM_PREFIXES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START ", "EXTENSION\t")
_CHUNK = 1 << 16
_INVALID: Any = object()


def trigger_records(event: Any, s3_client: Callable[[], Any]) -> Iterator[Item]:
    """Every record a trigger event carries; an event of no known trigger is one dead letter."""
    if isinstance(event, dict) and "awslogs" in event:
        yield from cloudwatch_records(event)
    elif isinstance(event, dict) and isinstance(event.get("Records"), list):
        for found in s3_objects(event):
            if isinstance(found, DeadLetter):
                yield found
            else:
                yield from s3_records(s3_client(), *found)
    else:
        yield DeadLetter(UNKNOWN_TRIGGER, "neither a CloudWatch Logs nor an S3 event", "trigger", str(event))


def cloudwatch_records(event: dict[str, Any]) -> Iterator[Item]:
    """Records of a CloudWatch Logs subscription event (base64 of gzip of JSON)."""
    data = event["awslogs"].get("data") if isinstance(event.get("awslogs"), dict) else None
    try:
        payload = orjson.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (TypeError, ValueError, binascii.Error, OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
        yield DeadLetter(DECODE_ERROR, f"CloudWatch Logs payload: {type(exc).__name__}: {exc}", "cloudwatch", str(data))
        return
    if not isinstance(payload, dict) or not isinstance(payload.get("logEvents", []), list):
        yield DeadLetter(DECODE_ERROR, "CloudWatch Logs payload has no logEvents list", "cloudwatch", str(payload))
        return
    if payload.get("messageType") == "CONTROL_MESSAGE":
        return
    where = f"cloudwatch:{payload.get('logGroup')}:{payload.get('logStream')}"
    for position, log_event in enumerate(payload.get("logEvents", [])):
        if not isinstance(log_event, dict) or not isinstance(log_event.get("message"), str):
            yield DeadLetter(DECODE_ERROR, f"logEvents[{position}] has no message", where, str(log_event))
            continue
        event_id = log_event.get("id") or f"{payload.get('logGroup')}:{payload.get('logStream')}:{position}"
        timestamp = log_event.get("timestamp")
        fallback = timestamp if type(timestamp) is int and timestamp >= 0 else None
        source = f"{where}:{event_id}"
        message = log_event["message"]
        start = message.find("{")
        if start < 0:
            if message.startswith(_PLATFORM_PREFIXES):
                yield Skipped(PLATFORM_LINE, source)
            else:
                yield DeadLetter(MALFORMED_JSON, "no JSON object in the log line", source, message)
            continue
        # A prefix before the JSON ("<time>\t<request id>\tINFO\t{...}") is dropped.
        yield RawRecord(source, f"cwl:{event_id}", message[start:] if start else message, fallback)


def s3_objects(event: dict[str, Any]) -> Iterator[tuple[str, str] | DeadLetter]:
    """(bucket, key) of each object in an S3 notification, the key URL-decoded."""
    for position, record in enumerate(event.get("Records") or []):
        try:
            yield record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"])
        except (KeyError, TypeError):
            yield DeadLetter(UNKNOWN_TRIGGER, f"Records[{position}] is not an S3 notification", "s3", str(record))


def s3_records(s3: Any, bucket: str, key: str) -> Iterator[Item]:
    """Records of one S3 object: one JSON document, a JSON array, or JSON Lines; gzip or plain.

    JSON Lines are streamed, so a large object is never held whole.
    """
    where = f"s3://{bucket}/{key}"
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        yield DeadLetter(OBJECT_MISSING, "the object no longer exists", where, "")
        return
    etag = str(response.get("ETag", "")).strip('"')
    modified = response.get("LastModified")
    fallback = int(modified.timestamp() * 1000) if modified is not None else None
    body = response["Body"]
    if key.endswith(".gz") or response.get("ContentEncoding") == "gzip":
        body = gzip.GzipFile(fileobj=body, mode="rb")
    identity = f"s3:{bucket}/{key}@{etag}"
    line_number = 0
    try:
        lines = _lines(body)
        for line_number, line in lines:
            if not line.strip():
                continue
            text, lossy, value = _parse(line)
            if value is _INVALID and line_number == 1 and line.lstrip()[:1] in (b"{", b"["):
                # Not one record per line: a pretty-printed document or array.
                yield from _document([(1, line), *lines], where, identity, fallback)
                return
            yield from _values(value, text, f"{where}#line={line_number}", f"{identity}#{line_number}", fallback, lossy)
    except (OSError, EOFError, zlib.error) as exc:
        yield DeadLetter(DECODE_ERROR, f"object unreadable after line {line_number}: {exc}", where, "")
        return
    if line_number == 0:
        yield Skipped(EMPTY_OBJECT, where)


def _document(numbered: list[tuple[int, bytes]], where: str, identity: str, fallback: int | None) -> Iterator[Item]:
    text, lossy, value = _parse(b"\n".join(line for _, line in numbered))
    if value is not _INVALID:
        yield from _values(value, text, where, identity, fallback, lossy)
        return
    # Not one document either: JSON Lines whose first line is broken.
    for number, line in numbered:
        if line.strip():
            text, lossy, value = _parse(line)
            yield from _values(value, text, f"{where}#line={number}", f"{identity}#{number}", fallback, lossy)


def _values(value: Any, text: str | bytes, where: str, identity: str, fallback: int | None, lossy: bool) -> Iterator[Item]:
    if value is _INVALID:
        # Left unparsed: metering dead-letters it as malformed JSON with the parser's message.
        yield RawRecord(where, identity, text, fallback, lossy=lossy)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield RawRecord(f"{where}[{index}]", f"{identity}[{index}]", "", fallback, value=item, lossy=lossy)
    else:
        yield RawRecord(where, identity, text, fallback, value=value, lossy=lossy)


def _parse(content: bytes) -> tuple[str | bytes, bool, Any]:
    """(text, lossy, value): invalid UTF-8 is replaced (and flagged) rather than lost."""
    try:
        return content, False, decode_json(content)
    except ValueError:
        pass
    try:
        content.decode("utf-8")
        return content, False, _INVALID
    except UnicodeDecodeError:
        text = content.decode("utf-8", "replace")
    try:
        return text, True, decode_json(text)
    except ValueError:
        return text, True, _INVALID


def _lines(body: Any) -> Iterator[tuple[int, bytes]]:
    """Numbered lines of a binary stream, read in chunks."""
    number = 0
    rest = b""
    while chunk := body.read(_CHUNK):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            number += 1
            yield number, part
    if rest:
        yield number + 1, rest
