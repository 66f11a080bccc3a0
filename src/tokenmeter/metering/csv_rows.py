"""CSV files of records: Langfuse's blob storage export with its file type set to CSV (`<project>/observations_v2/
<time>.csv[.gz]`), read as its JSONL would be read (s3_objects.py).

The first line names the columns; each row after it is a record. Fields follow RFC 4180: separated by commas,
quoted where they hold a comma, a quote or a line break (Langfuse quotes every one), a quote inside doubled; a
quoted field may run over several lines, so a row is the lines up to the one that closes its last quote.

A database's table export reads the same way (PostgreSQL's `COPY ... TO ... (FORMAT csv, HEADER)` of LiteLLM's
`LiteLLM_SpendLogs`, say): fields quoted only where they must be, JSON columns as JSON text.

A CSV field is text, so its type is gone: Langfuse writes a string as it is, anything else as JSON, and null as
an empty field (langfuse: transformStreamToCsv, stringifyForCsv); a database writes NULL as an empty field. So a
field holding a JSON object or array (a map such as `usage_details` or `metadata`) is read back as one, an empty
field as null, a whole number written as JSON writes it (no sign but `-`, no leading zero: the text is the
number's only spelling) as a number, `true` and `false` as booleans; any other field stays text (decimals and times
included). A column named as an id (`id`, `trace_id`, `requestId`, ...) stays text whatever it holds: ids are strings
in the records the readers know, and a span id of hex digits that happen to be decimal ones is still an id.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import orjson

# A column name as exports write them (snake_case, camelCase, dotted paths); anything else on a first line that
# is not JSON is no header (a log line's words, a time).
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_FIELD = re.compile(r'"((?:[^"]+|"")*)"|([^,"]*)')
_QUOTE = ord('"')
_WHOLE = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\Z")  # (past 18 digits, text: no count or id is that long)
_WORDS = {"true": True, "false": False}


class CsvRowError(ValueError):
    """A row that is not one of the file's: fields past or short of its header, or a quote left open."""


def csv_header(line: bytes) -> list[str] | None:
    """The column names if ``line`` (an object's first line) is a CSV header, else None."""
    try:
        text = line.decode("utf-8-sig")  # (a spreadsheet's byte order mark)
    except UnicodeDecodeError:
        return None
    names = _fields(text)
    if names is None or len(names) < 2 or len(set(names)) != len(names):
        return None
    return names if all(_COLUMN.match(name) for name in names) else None


def joined_rows(lines: Iterator[tuple[int, int, Any]], max_row: int) -> Iterator[tuple[int, int, bytes | int]]:
    """(number of its first line, offset, the row) per row of ``lines`` (after the header): a row's lines joined
    while a quote is open. A row past ``max_row`` bytes is its size instead. A line too long to keep (not bytes,
    its ``size`` known) cannot be looked into for quotes: it ends its row, which is too long."""
    number = start = size = 0
    parts: list[bytes] | None = []
    open_quote = False
    for line_number, line_start, line in lines:
        if not open_quote:
            number, start, size, parts = line_number, line_start, 0, []
        else:
            size += 1  # the line break inside the quoted field
        if not isinstance(line, bytes):
            yield number, start, size + line.size
            open_quote = False
            continue
        size += len(line)
        if parts is not None and size <= max_row:
            parts.append(line)
        else:
            parts = None
        open_quote ^= line.count(_QUOTE) % 2 == 1
        if not open_quote:
            yield number, start, b"\n".join(parts) if parts is not None else size
    if open_quote:  # the file ends inside a quoted field: the rest is one row, that fails to split
        yield number, start, b"\n".join(parts) if parts is not None else size


def csv_record(header: list[str], row: str) -> dict[str, Any]:
    """The record a row holds, by the header's names."""
    import csv  # (only where an object is CSV: not at cold start)

    try:
        fields: list[str] | None = next(csv.reader((row,), strict=True))  # (the C reader: a row in a third the time)
    except csv.Error:
        # Its error, or a field past its size limit (128 KiB by default, process-wide): a prompt may be longer, and
        # the row is bounded by max_record_bytes already.
        fields = _fields(row)
    if fields is None:
        raise CsvRowError("not a row of CSV fields: a quote left open, or a character after a closing quote")
    if len(fields) != len(header):
        raise CsvRowError(f"{len(fields)} fields where the header names {len(header)} columns")
    return {name: (text or None) if _is_id(name) else _value(text) for name, text in zip(header, fields, strict=True)}


@functools.lru_cache(maxsize=1024)
def _is_id(name: str) -> bool:
    return name.lower() == "id" or name.endswith(("_id", ".id", "Id", "ID"))


def _fields(text: str) -> list[str] | None:
    if text.endswith("\r"):  # a CRLF file's line end (inside quotes the \r would come before the closing quote)
        text = text[:-1]
    fields, at, end = [], 0, len(text)
    while True:
        found = _FIELD.match(text, at)  # (always: an unquoted field may be empty)
        quoted = found[1]  # type: ignore[index]
        fields.append(quoted.replace('""', '"') if quoted is not None else found[2])  # type: ignore[index]
        at = found.end()  # type: ignore[union-attr]
        if at == end:
            return fields
        if text[at] != ",":
            return None
        at += 1


def _value(text: str) -> Any:
    if not text:
        return None
    first = text[0]
    if first in "{[":
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return value if type(value) in (dict, list) else text
    if (first.isdigit() or first == "-") and _WHOLE.match(text):
        return int(text)
    return _WORDS.get(text, text)
