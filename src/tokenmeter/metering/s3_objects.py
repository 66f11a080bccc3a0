"""Records of S3 objects, read within bounds: one JSON document, a JSON array, JSON Lines, or the rows of a CSV file
(csv_rows.py); plain, gzip, or compressed as compressed.py reads; or the rows of a Parquet file (parquet.py), read
whole up to ``max_document_bytes``.

An object is hostile input as much as a record is, so reading it is bounded:
- lines are split without re-copying what came before, and a line past ``max_record_bytes`` is
  skipped to the next newline and dead-lettered with its byte range;
- at most ``max_object_bytes`` are read (inflated); the rest becomes one dead letter with its range;
- a whole-document parse (a pretty-printed document or a JSON array) is tried only below
  ``max_document_bytes``, so a broken first line never pulls a large object into memory; an array past it (or
  on a line past ``max_record_bytes``) is read element by element (json_arrays.py);
- after ``max_dead_letters_per_object`` dead letters the rest becomes one dead letter with its range;
- the object read is the version the notification named (``versionId``, else its ``eTag``): one
  overwritten in between is a dead letter, never its new content billed under the old notification;
- a read that fails in mid-object (timeout, reset) is resumed from where it stopped; if it keeps
  failing the invocation fails, so Lambda retries it, rather than the rest being taken for garbage.
Every such letter names the object and where reading stopped, so the object can be backfilled.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson

from tokenmeter.core import decode_json
from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.core.exceptions import TokenmeterError

from .csv_rows import CsvRowError, csv_header, csv_record, joined_rows
from .records import (
    DECODE_ERROR,
    EMPTY_OBJECT,
    OBJECT_CHANGED,
    OBJECT_MISSING,
    OBJECT_TOO_LARGE,
    PLATFORM_LINE,
    PLATFORM_PREFIXES,
    RECORD_TOO_LARGE,
    TOO_MANY_DEAD_LETTERS,
    UNKNOWN_FORMAT,
    UNKNOWN_TRIGGER,
    DeadLetterBudget,
    RawRecord,
    ReadLimits,
    Skipped,
)

Item = RawRecord | DeadLetter | Skipped
_CHUNK = 1 << 16
_INVALID: Any = object()
_READ_ATTEMPTS = 3
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"
# The first byte of each format compressed.py reads (zstd, Snappy's framing, ZIP, Hadoop's Snappy, bzip2, xz, UTF-16's
# byte order marks): no JSON or text begins with one but "P" and "B", which compressed.inflating then tells apart.
COMPRESSED_FIRST_BYTES = frozenset((b"\x28", b"\xff", b"P", b"\x00", b"B", b"\xfd", b"\xfe"))
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # as compressed.py's, known before that module is imported
_DECODER = json.JSONDecoder()
_SPACES = re.compile(r"\s*")
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
_STAMPED = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z ")
_LINE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z) ")
_ENVELOPE = b'{"messageType":'
_BOUNDARY, _SPLIT_BOUNDARY = b'}{"messageType":', b'}\n{"messageType":'


class S3ReadError(TokenmeterError):
    """Raised when an object cannot be read to its end now: the invocation fails and Lambda retries it."""


@dataclass(frozen=True)
class Notification:
    bucket: str
    key: str  # URL-decoded
    version_id: str | None = None
    etag: str | None = None

    @classmethod
    def named(cls, bucket: str, key: str, version_id: Any, etag: Any) -> Notification:
        """The object as an event names it: an empty version is none, an ETag is kept without its quotes."""
        return cls(bucket, key, version_id or None, (etag or "").strip('"') or None)


def s3_notifications(event: dict[str, Any]) -> Iterator[Notification | DeadLetter]:
    """The objects of an S3 notification, as it named them."""
    for position, record in enumerate(event.get("Records") or []):
        try:
            found = record["s3"]["object"]
            yield Notification.named(record["s3"]["bucket"]["name"], unquote_plus(found["key"]), found.get("versionId"),
                                     found.get("eTag"))
        except (KeyError, TypeError, AttributeError):
            yield DeadLetter(UNKNOWN_TRIGGER, f"Records[{position}] is not an S3 notification", "s3", str(record))


def is_eventbridge_object(event: Any) -> bool:
    """An S3 "Object Created" event as EventBridge delivers it (a rule's target, or through SQS)."""
    return isinstance(event, dict) and event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created"


def eventbridge_notification(event: dict[str, Any]) -> Notification | DeadLetter:
    """The object an EventBridge "Object Created" event names; its key, unlike a notification's, is not
    URL-encoded."""
    try:
        detail = event["detail"]
        found = detail["object"]
        if not isinstance(found["key"], str) or not isinstance(detail["bucket"]["name"], str):
            raise TypeError("bucket name and key must be strings")
        return Notification.named(detail["bucket"]["name"], found["key"], found.get("version-id"), found.get("etag"))
    except (KeyError, TypeError, AttributeError):
        return DeadLetter(UNKNOWN_TRIGGER, "an EventBridge Object Created event without its bucket and key", "s3",
                          str(event))


def s3_records(s3: Any, bucket: str, key: str, limits: ReadLimits | None = None, budget: DeadLetterBudget | None = None,
               version_id: str | None = None, etag: str | None = None) -> Iterator[Item]:
    limits, budget = limits or ReadLimits(), budget or DeadLetterBudget(0)
    where = f"s3://{bucket}/{key}"
    reader = _ObjectReader(s3, bucket, key, version_id, etag)
    try:
        response = reader.open()
    except _Gone as gone:
        yield DeadLetter(gone.reason, gone.detail, where, "")
        return
    etag = str(response.get("ETag", "")).strip('"')
    modified = response.get("LastModified")
    fallback = int(modified.timestamp() * 1000) if modified is not None else None
    body: Any = reader
    first = opening = reader.head()
    identity = f"s3:{bucket}/{key}@{etag}"
    if first[:4] == PARQUET_MAGIC:  # Langfuse's export (its default file type): rows, not lines
        yield from _parquet_rows(reader, where, identity, fallback, limits)
        return
    # By content, not name: Firehose writes its compressed objects with no suffix. (A Firehose archive of a log
    # group is gzip, or what else the stream's compression says: _Envelopes looks at what it inflates to.)
    inflated = None
    if first[:2] == GZIP_MAGIC:
        inflated = gzip.GzipFile(fileobj=reader, mode="rb")
    elif first[:1] in COMPRESSED_FIRST_BYTES:
        from .compressed import inflating  # (only for an object that may be one: not at cold start)

        inflated = inflating(first, reader)
    if inflated is not None:
        with contextlib.suppress(OSError, EOFError, zlib.error):  # (told below, as the object is read)
            opening = inflated.peek(_CHUNK)
            if opening[:2] == GZIP_MAGIC and not isinstance(inflated, gzip.GzipFile):
                # Firehose compressing what CloudWatch Logs had gzipped (a log group's subscription, not decompressed)
                inflated = gzip.GzipFile(fileobj=inflated, mode="rb")
                opening = inflated.peek(_CHUNK)
            if opening.startswith(UTF16_BOMS):  # UTF-16 text, compressed after it was written
                from .compressed import utf16_as_utf8

                inflated = utf16_as_utf8(inflated)
                opening = inflated.peek(_CHUNK)
            if opening.startswith(UTF8_BOM):
                inflated.read(len(UTF8_BOM))
                opening = opening[len(UTF8_BOM):]
        body = _Envelopes(inflated)
    elif first.startswith(UTF8_BOM):  # a Windows tool's byte order mark: no part of the first record
        reader.read(len(UTF8_BOM))
        opening = first[len(UTF8_BOM):]
    elif _ENVELOPE.startswith(first[:len(_ENVELOPE)]):
        body = _Envelopes(reader)  # (plain: decompressed by Firehose, its envelopes kept)
    if (found := _NOT_SPACE.search(opening)) is not None and found[0] == b"[":
        yield from _array_object(body, where, identity, fallback, limits, budget)
        return
    yield from _object_lines(body, where, identity, fallback, limits, budget)


def _object_lines(body: Any, where: str, identity: str, fallback: int | None, limits: ReadLimits,
                  budget: DeadLetterBudget, first_line: int = 1, offset: int = 0) -> Iterator[Item]:
    """The records of an object read line by line (a document or an array on several lines parsed whole); from
    ``first_line`` on, at ``offset`` in the object, where what came before was read otherwise."""
    lines = _Lines(body, limits)
    lines.number, lines.offset = first_line - 1, offset
    try:
        yield from _json_lines(_log_messages(iter(lines), limits), where, identity, fallback, limits, budget,
                               document_first=offset == 0)
        if lines.truncated:
            yield _rest(OBJECT_TOO_LARGE, f"the object inflates past {limits.max_object_bytes:,} bytes", where,
                        lines.rest_from)
    except _Stop as stop:
        yield _rest(TOO_MANY_DEAD_LETTERS, f"more than {budget.cap} dead letters", where, stop.offset)
    except (OSError, EOFError, zlib.error) as exc:  # the content itself: a corrupt gzip stream
        yield DeadLetter(DECODE_ERROR, f"object unreadable after line {lines.number}: {exc}", where, "")
        return
    if lines.number == 0 and offset == 0:
        yield Skipped(EMPTY_OBJECT, where)


def _array_object(body: Any, where: str, identity: str, fallback: int | None, limits: ReadLimits,
                  budget: DeadLetterBudget) -> Iterator[Item]:
    """An object holding a JSON array: read as any object is where it keeps to that reading's bounds (a document up to
    ``max_document_bytes``, each line up to ``max_record_bytes``), else element by element (json_arrays.py)."""
    try:
        ahead, failed = _read_ahead(body, limits.max_document_bytes)
        size = len(ahead)
        # (Its lines are measured only where one may be too long: a split copies the whole of what was read.)
        if failed is None and size <= limits.max_document_bytes and (
                size <= limits.max_record_bytes or max(map(len, ahead.split(b"\n"))) <= limits.max_record_bytes):
            yield from _object_lines(io.BytesIO(ahead), where, identity, fallback, limits, budget)
            return
        from .compressed import Prefixed  # (only for an array too large to read whole)
        from .json_arrays import array_elements, begins_an_array

        body = failed or body  # (cut short: the rest raises its failure, after what was read ahead)
        if not begins_an_array(ahead):
            yield from _object_lines(Prefixed(ahead, body), where, identity, fallback, limits, budget)
            return
        rest = yield from array_elements(ahead, body, where, identity, fallback, limits, budget)
        if rest is not None:  # what follows it, line by line
            yield from _object_lines(Prefixed(rest[0], body), where, identity, fallback, limits, budget, *rest[1:])
    except (OSError, EOFError, zlib.error) as exc:  # a corrupt gzip stream
        yield DeadLetter(DECODE_ERROR, f"object unreadable: {exc}", where, "")


def _read_ahead(body: Any, limit: int) -> tuple[bytes, _Failed | None]:
    """``body``'s first bytes, until past ``limit`` or its end; and, where its reading failed after giving some, a
    body that raises the failure again: what was read is then read element by element, as a large array's start
    is, each element it holds whole a record, then one letter."""
    parts, size, read = [], 0, some_of(body)
    try:
        while size <= limit and (chunk := read(_CHUNK * 16)):
            parts.append(chunk)
            size += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        if not parts:
            raise
        return b"".join(parts), _Failed(exc)
    return b"".join(parts), None


class _Failed:
    """An object whose reading failed, what it gave before held elsewhere: reading on raises the failure again."""

    def __init__(self, error: Exception):
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error


def _parquet_rows(reader: _ObjectReader, where: str, identity: str, fallback: int | None,
                  limits: ReadLimits) -> Iterator[Item]:
    """Each row of a Parquet file a record (parquet.py). The file is read whole: its index is at its end."""
    from .parquet import ParquetError, parquet_rows  # (only where an object is Parquet)

    parts, size = [], 0
    while chunk := reader.read(_CHUNK * 16):
        size += len(chunk)
        if size > limits.max_document_bytes:  # parsed whole, as a JSON document is
            yield DeadLetter(OBJECT_TOO_LARGE, f"a Parquet file past {limits.max_document_bytes:,} bytes, the metering "
                             "config's max_document_bytes (it is read whole): raise it, or have the exporter write smaller "
                             "files", where, "")
            return
        parts.append(chunk)
    row = 0
    try:
        for row, value in enumerate(parquet_rows(b"".join(parts)), 1):
            yield RawRecord(f"{where}#row={row}", f"{identity}#row={row}", "", fallback, value=value, origin=where)
    except ParquetError as exc:
        yield DeadLetter(UNKNOWN_FORMAT if exc.unsupported else DECODE_ERROR,
                         f"Parquet file unreadable after row {row:,}: {exc}", where, "")
        return
    if row == 0:
        yield Skipped(EMPTY_OBJECT, where)


class _Stop(Exception):
    """Raised inside the line loop when the object has cost its share of dead letters."""

    def __init__(self, offset: int):
        super().__init__(offset)
        self.offset = offset  # where the first line not read begins


def _json_lines(numbered: Iterator[Line], where: str, identity: str, fallback: int | None,
                limits: ReadLimits, budget: DeadLetterBudget, document_first: bool = False) -> Iterator[Item]:
    exhausted = budget.exhausted
    for line_number, start, line in numbered:
        if where in exhausted:
            budget.note(where)
            raise _Stop(start)
        if isinstance(line, _TooLong):
            budget.note(where)
            yield DeadLetter(RECORD_TOO_LARGE, f"line {line_number} is {line.size:,} bytes (limit "
                             f"{limits.max_record_bytes:,}), inflated bytes {start}-{start + line.size - 1}",
                             f"{where}#line={line_number}", "")
            continue
        if not line or line.isspace():  # (isspace stops at a line's first byte, where strip would copy it)
            continue
        try:
            text, lossy, value = line, False, orjson.loads(line)  # the usual line, before _parse's other cases
        except orjson.JSONDecodeError:
            text, lossy, value = _parse(line)
        if type(value) is dict:  # the usual line: one record
            yield RawRecord(f"{where}#line={line_number}", f"{identity}#{line_number}", text, fallback, value, lossy,
                            where)
            continue
        if document_first and value is _INVALID and line_number == 1 and (header := csv_header(line)) is not None:
            yield from _csv_records(header, numbered, where, identity, fallback, limits, budget)
            return
        if document_first and value is _INVALID and line_number == 1 and line.lstrip()[:1] in (b"{", b"["):
            # Not one record per line: a pretty-printed document or array, if it is small enough.
            yield from _document(line, numbered, where, identity, fallback, limits, budget)
            return
        if value is _INVALID:
            if line.lstrip()[:1] == b"{":
                value = _concatenated(text)
            elif (logged := _log_line(text, where, line_number, identity, fallback, lossy)) is not None:
                yield logged
                continue
        yield from _values(value, text, f"{where}#line={line_number}", f"{identity}#{line_number}", fallback, lossy, where)


def _csv_records(header: list[str], rows: Iterator[Line], where: str, identity: str, fallback: int | None,
                 limits: ReadLimits, budget: DeadLetterBudget) -> Iterator[Item]:
    """The rows of a CSV file after its header line, each a record (csv_rows.py)."""
    exhausted, records = budget.exhausted, 0
    for number, start, row in joined_rows(rows, limits.max_record_bytes):
        if where in exhausted:
            budget.note(where)
            raise _Stop(start)
        source = f"{where}#line={number}"
        if type(row) is int:
            budget.note(where)
            yield DeadLetter(RECORD_TOO_LARGE, f"the row at line {number} is {row:,} bytes (limit "
                             f"{limits.max_record_bytes:,}), inflated bytes {start}-{start + row - 1}", source, "")
            continue
        try:
            text, lossy = row.decode(), False  # type: ignore[union-attr]
        except UnicodeDecodeError:  # replaced (and flagged) rather than lost, as a JSON line's
            text, lossy = row.decode("utf-8", "replace"), True  # type: ignore[union-attr]
        if not text or text.isspace():
            continue
        records += 1
        try:
            value = csv_record(header, text)
        except CsvRowError as exc:
            budget.note(where)
            yield DeadLetter(DECODE_ERROR, f"CSV row at line {number}: {exc}", source, text)
            continue
        yield RawRecord(source, f"{identity}#{number}", text, fallback, value, lossy, where)
    if records == 0:  # a header alone: an export of nothing
        yield Skipped(EMPTY_OBJECT, where)


def _rest(reason: str, why: str, where: str, offset: int) -> DeadLetter:
    return DeadLetter(reason, f"{why}: inflated bytes {offset}- were not read; backfill the object once fixed", where, "")


def _document(first: bytes, lines: Iterator[Line], where: str, identity: str, fallback: int | None,
              limits: ReadLimits, budget: DeadLetterBudget) -> Iterator[Item]:
    """A document or array spread over lines, parsed whole if the object ends within ``max_document_bytes``;
    else (and when it is no document either) the lines are JSON Lines whose first line is broken."""
    numbered: list[Line] = [(1, 0, first)]
    size = len(first)
    for number, start, line in lines:
        numbered.append((number, start, line))
        if isinstance(line, _TooLong):
            break  # a line too long to keep: no document that can be read whole
        size += len(line) + 1
        if size > limits.max_document_bytes:
            break
    else:
        text, lossy, value = _parse(b"\n".join(line for _, _, line in numbered))  # type: ignore[misc]
        if value is not _INVALID:
            yield from _values(value, text, where, identity, fallback, lossy, where)
            return
    yield from _json_lines(itertools.chain(numbered, lines), where, identity, fallback, limits, budget)


def _values(value: Any, text: str | bytes, where: str, identity: str, fallback: int | None, lossy: bool,
            origin: str) -> Iterator[Item]:
    if value is _INVALID:
        # Left unparsed: metering dead-letters it as malformed JSON with the parser's message.
        yield RawRecord(where, identity, text, fallback, lossy=lossy, origin=origin)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield RawRecord(f"{where}[{index}]", f"{identity}[{index}]", "", fallback, value=item, lossy=lossy,
                            origin=origin)
    else:
        yield RawRecord(where, identity, text, fallback, value=value, lossy=lossy, origin=origin)


def _log_messages(lines: Iterator[Line], limits: ReadLimits) -> Iterator[Line]:
    """The lines as read; in a log group exported to S3 (its first line begins with a time), a message logged over
    several lines (a multi-line `console.log`, a traceback) as one: each line up to the next that begins with a
    time, numbered as its first."""
    first = next(lines, None)
    if first is None:
        return iter(())
    if not (isinstance(first[2], bytes) and _STAMPED.match(first[2])):
        return itertools.chain((first,), lines)  # (no generator in between: most objects are not exports)
    return _joined(first, lines, limits.max_record_bytes)


def _joined(first: Line, lines: Iterator[Line], max_line: int) -> Iterator[Line]:
    number, start, parts, size = first[0], first[1], [first[2]], len(first[2])  # type: ignore[arg-type]
    for line in lines:
        text = line[2]
        if isinstance(text, bytes) and _STAMPED.match(text):  # the next message
            yield number, start, b"\n".join(parts) if parts is not None else _TooLong(size)  # type: ignore[arg-type]
            number, start, parts, size = line[0], line[1], [text], len(text)
            continue
        size += 1 + (text.size if isinstance(text, _TooLong) else len(text))
        if parts is not None and isinstance(text, bytes) and size <= max_line:
            parts.append(text)
        else:
            parts = None  # past the size of a record: skipped and dead-lettered, as a long line is
    yield number, start, b"\n".join(parts) if parts is not None else _TooLong(size)  # type: ignore[arg-type]


def _concatenated(text: str | bytes) -> Any:
    """The records of a line that holds several JSON objects one after another, nothing or only spaces between
    (Firehose's objects without a newline delimiter, `JSON.stringify`s written back to back), as a list;
    _INVALID if it is not that."""
    try:
        text = text.decode() if isinstance(text, bytes) else text
        values, at = [], 0
        while (at := _SPACES.match(text, at).end()) < len(text):  # type: ignore[union-attr]
            value, at = _DECODER.raw_decode(text, at)
            values.append(value)
    except (ValueError, RecursionError):
        return _INVALID
    return values if len(values) > 1 and all(type(value) is dict for value in values) else _INVALID


def _log_line(text: str | bytes, where: str, line_number: int, identity: str, fallback: int | None,
              lossy: bool) -> Item | None:
    """A log line with something before its JSON, read as a CloudWatch line is (from its first "{"): a log group
    exported to S3 (CloudWatch Logs' export task writes "<ISO time> <message>", and that time is the line's), or
    any log file with a prefix. None for a line that is neither (it is malformed JSON)."""
    message = text.decode() if isinstance(text, bytes) else text  # (bytes only where they are valid UTF-8)
    stamp = _LINE_TIME.match(message)
    if stamp is not None:
        try:
            fallback = round(datetime.fromisoformat(stamp[1]).timestamp() * 1000)
        except (ValueError, OverflowError):  # only looks like a time ("2026-13-45T..."): the object's stands
            stamp = None
    start = stamp.end() if stamp else 0
    source = f"{where}#line={line_number}"
    if stamp is not None and message.startswith(PLATFORM_PREFIXES, start):
        return Skipped(PLATFORM_LINE, source)
    at = message.find("{", start)
    if at <= 0 and stamp is None:
        return None
    return RawRecord(source, f"{identity}#{line_number}", message, fallback, lossy=lossy, origin=where,
                     json_at=at if at >= 0 else start)


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


class _Envelopes:
    """An object of CloudWatch Logs payloads as Firehose writes them (a log group's subscription to a delivery
    stream): one after another with nothing between, so a newline is put between each two and each is a line.
    `}{"messageType":` is always such a boundary: JSON allows only `,` `}` `]` after a `}`, and in a string the
    quote would be escaped. Any other object passes unchanged. (Line offsets in letters then count the newlines.)"""

    def __init__(self, body: Any):
        self.body = body
        self._read = some_of(body)
        self._split: bool | None = None  # decided by the first bytes
        self._carry = b""  # the end of what was read, where a boundary may begin

    def read(self, size: int = -1) -> bytes:
        while chunk := self._read(size):
            data = self._carry + chunk
            if self._split is None:
                if len(data) < len(_ENVELOPE) and _ENVELOPE.startswith(data):
                    self._carry = data  # too few bytes yet to tell
                    continue
                self._split = data.startswith(_ENVELOPE)
                if not self._split:
                    self._carry = b""
                    self.read = self._read  # type: ignore[method-assign]  # (from now on, no call between)
                    return data
            data = data.replace(_BOUNDARY, _SPLIT_BOUNDARY)
            keep = len(_BOUNDARY) - 1  # a boundary that begins here and ends in the next chunk
            data, self._carry = data[:-keep], data[-keep:]
            if data:
                return data
        data, self._carry = self._carry, b""
        return data


@dataclass(frozen=True, slots=True)
class _TooLong:
    size: int


Line = tuple[int, int, "bytes | _TooLong"]  # (number, inflated offset of its first byte, the line)


class _Lines:
    """Numbered lines of a binary stream, read in chunks, each byte copied once; bounded as ``limits`` say."""

    def __init__(self, body: Any, limits: ReadLimits):
        self.body, self.limits = body, limits
        self.number = 0
        self.offset = 0  # inflated bytes read so far
        self.truncated = False  # stopped at max_object_bytes
        self.rest_from = 0  # once truncated: where the unread rest begins

    def __iter__(self) -> Iterator[Line]:
        pending: list[bytes] = []  # the unfinished line's pieces, joined once when it ends
        pending_size, start, too_long = 0, 0, False
        max_line, max_object = self.limits.max_record_bytes, self.limits.max_object_bytes
        read = some_of(self.body)
        while chunk := read(_CHUNK):
            if self.offset + len(chunk) > max_object:
                chunk, self.truncated = chunk[: max_object - self.offset], True
            position = self.offset  # of the chunk's first byte
            self.offset += len(chunk)
            parts = _split_lines(chunk)
            if len(parts) > 1:
                # The first part ends the unfinished line.
                first = parts[0]
                pending_size += len(first)
                self.number += 1
                if too_long or pending_size > max_line:
                    yield self.number, start, _TooLong(pending_size)
                else:
                    yield self.number, start, b"".join(pending) + first if pending else first
                position += len(first) + 1
                # Lines wholly inside the chunk: the usual case, kept lean.
                for part in itertools.islice(parts, 1, len(parts) - 1):
                    self.number += 1
                    yield self.number, position, part if len(part) <= max_line else _TooLong(len(part))
                    position += len(part) + 1
                pending, pending_size, start, too_long = [], 0, position, False
            last = parts[-1]
            if not too_long:
                if pending_size + len(last) > max_line:
                    too_long, pending = True, []
                else:
                    pending.append(last)
            pending_size += len(last)
            if self.truncated:
                self.rest_from = start  # the unfinished line is part of what was not read
                return
        if pending_size:
            self.number += 1
            yield self.number, start, _TooLong(pending_size) if too_long else b"".join(pending)


def _split_lines(chunk: bytes) -> Sequence[bytes]:
    """``chunk.split(b"\n")``, without split's byte-by-byte walk where the chunk ends one line or none: an object
    that is one document (an OTLP export, 17 KB on one line) paid 5 us for it, a tenth of its parse."""
    end = chunk.find(b"\n")
    if end < 0:
        return (chunk,)
    if end == chunk.rfind(b"\n"):
        return chunk[:end], chunk[end + 1:]
    return chunk.split(b"\n")


def some_of(body: Any) -> Callable[[int], bytes]:
    """How to read ``body`` so that what it inflated before damage is had: a buffered reader's ``read(n)`` reads its
    stream until it has ``n`` bytes, and drops them all where the stream then fails (a gzip object cut short, smaller
    than one read, was one letter and no record); ``read1`` gives what one read of the stream gives."""
    return getattr(body, "read1", None) or body.read


def get_object_args(bucket: str, key: str, version_id: str | None, etag: str | None) -> dict[str, Any]:
    """The GetObject arguments that read the version a notification named (prefetch.py starts the same GET)."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        args["VersionId"] = version_id
    elif etag:
        args["IfMatch"] = etag  # no versioning: at least know the content is the one notified
    return args


class _Gone(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _ObjectReader:
    """The object's bytes; a read that fails part-way resumes with a ranged GET of the same version."""

    def __init__(self, s3: Any, bucket: str, key: str, version_id: str | None, etag: str | None):
        self.s3, self.bucket, self.key, self.version_id, self.etag = s3, bucket, key, version_id, etag
        self.offset = 0
        self._body: Any = None
        self._head: bytes | None = None  # the first chunk, looked at (head); read from ``_at`` on
        self._at = 0

    def open(self) -> dict[str, Any]:
        response = self._get()
        self.etag = self.etag or str(response.get("ETag", "")).strip('"') or None
        self._body = response["Body"]
        return response

    def _get(self, start: int = 0) -> dict[str, Any]:
        args = get_object_args(self.bucket, self.key, self.version_id, self.etag)
        if start:
            args["Range"] = f"bytes={start}-"
        try:
            return self.s3.get_object(**args)
        except self.s3.exceptions.NoSuchKey:
            raise _Gone(OBJECT_MISSING, "the object no longer exists") from None
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
            if code in ("NoSuchVersion", "NoSuchKey"):
                raise _Gone(OBJECT_MISSING, f"the object version no longer exists ({code})") from None
            if code in ("PreconditionFailed", "412"):
                raise _Gone(OBJECT_CHANGED, f"the object was overwritten after the notification (inflated "
                                            f"offset {self.offset}); its new content has a notification of its own") from None
            raise

    def head(self) -> bytes:
        """The object's first chunk (at least enough bytes to tell gzip or a Firehose archive, unless the object is
        shorter), looked at before it is read."""
        if self._head is None:
            self._head, self._at = self._read(_CHUNK), 0
            while len(self._head) < len(_ENVELOPE) and (more := self._read(_CHUNK)):
                self._head += more
        return self._head

    def read(self, size: int = -1) -> bytes:
        head, at = self._head, self._at
        if head is not None and at < len(head):  # the chunk looked at, before anything more (never more than asked)
            end = len(head) if size < 0 or at + size > len(head) else at + size
            self._at = end
            return head if at == 0 and end == len(head) else head[at:end]
        return self._read(size)

    def _read(self, size: int) -> bytes:
        for attempt in range(_READ_ATTEMPTS):
            try:
                data = self._body.read(size)
                self.offset += len(data)
                return data
            except Exception as exc:  # the transport, not the content: resume where it stopped
                if attempt == _READ_ATTEMPTS - 1:
                    raise S3ReadError(f"s3://{self.bucket}/{self.key}: reading failed at byte {self.offset} "
                                      f"{_READ_ATTEMPTS} times: {type(exc).__name__}") from None
                time.sleep(0.2 * 2**attempt)
                try:
                    self._body = self._get(self.offset)["Body"]
                except _Gone as gone:
                    raise S3ReadError(gone.detail) from None
                except Exception:  # noqa: S112 - counted as the next attempt
                    continue
        raise S3ReadError(f"s3://{self.bucket}/{self.key}: unreadable")
