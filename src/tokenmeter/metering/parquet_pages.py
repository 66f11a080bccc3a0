"""One column chunk of a Parquet file: its pages' repetition and definition levels and its values, each value as
JSON carries it (apache/parquet-format: Encodings.md, LogicalTypes.md). parquet.py puts the columns together.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .parquet_codecs import decompress
from .thrift_compact import read_struct, varint

REQUIRED, OPTIONAL, REPEATED = 0, 1, 2
_ENCODINGS = {0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED",
              6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_PAGE_VALUES = 1 << 26  # more than any writer puts in one page; a header saying more is not believed
_UNITS = {1: 1_000, 2: 1, 3: 0.001}  # TimeUnit: MILLIS, MICROS, NANOS -> microseconds


class ParquetError(ValueError):
    """A file, or part of one, that cannot be read: the message says what and where. ``unsupported``: valid
    Parquet in an encoding or codec not read here, rather than a damaged file."""

    def __init__(self, message: str, unsupported: bool = False):
        super().__init__(message)
        self.unsupported = unsupported


@dataclass
class Node:
    """A field of the file's schema: a group (``physical`` None) or a column, with its levels."""

    name: str
    repetition: int
    physical: int | None  # None for a group
    type_length: int = 0
    converted: int | None = None
    logical: dict[int, Any] = field(default_factory=dict)
    scale: int = 0
    children: list[Node] = field(default_factory=list)
    def_level: int = 0  # of this node: how many of its ancestors and itself can be absent
    rep_level: int = 0

    def is_map(self) -> bool:
        return self.converted in (1, 2) or 2 in self.logical

    def is_list(self) -> bool:
        return self.converted == 3 or 3 in self.logical


def column_chunk(data: bytes, meta: dict[int, Any], leaf: Node) -> tuple[list[int] | None, list[int] | None, list[Any]]:
    """Repetition levels, definition levels (None where the column has none) and the values of one chunk."""
    codec, remaining = meta.get(4, 0), meta.get(5, 0)
    pos = meta.get(11) if meta.get(11) is not None and meta.get(11) > 0 else meta[9]
    max_rep, max_def = leaf.rep_level, leaf.def_level
    reps: list[int] = []
    defs: list[int] = []
    values: list[Any] = []
    dictionary: list[Any] | None = None
    while remaining > 0:
        header, pos = read_struct(data, pos)
        kind, size, stored = header[1], header[2], header[3]
        if size < 0 or stored < 0 or pos + stored > len(data):
            raise ParquetError(f"a page of {stored:,} bytes at byte {pos:,} of {len(data):,}")
        page = data[pos:pos + stored]
        pos += stored
        if kind == 2:  # dictionary page: PLAIN values
            body = decompress(codec, page, size)
            dictionary = _plain(body, 0, leaf, header[7][1])[0]
            continue
        if kind == 0:
            info = header[5]
            count, encoding = info[1], info[2]
            if 4 in (info.get(3), info.get(4)) and (max_rep or max_def):
                raise ParquetError("levels in the deprecated BIT_PACKED encoding, which count_tokens does not read",
                                   unsupported=True)
            body = decompress(codec, page, size)
            at = 0
            if max_rep:
                page_reps, at = _levels_v1(body, at, max_rep, count)
                reps += page_reps
            if max_def:
                page_defs, at = _levels_v1(body, at, max_def, count)
                defs += page_defs
        elif kind == 3:
            info = header[8]
            count, encoding, rep_len, def_len = info[1], info[4], info[6], info[5]
            if max_rep:
                reps += _hybrid(page, 0, rep_len, _width(max_rep), count)
            if max_def:
                defs += _hybrid(page, rep_len, rep_len + def_len, _width(max_def), count)
            values_part = page[rep_len + def_len:]
            body = decompress(codec, values_part, size - rep_len - def_len) if info.get(7, True) else values_part
            at = 0
        else:
            continue  # an index page
        present = count if not max_def else sum(1 for d in defs[len(defs) - count:] if d == max_def)
        values += _values(body, at, leaf, encoding, present, dictionary)
        remaining -= count
    return (reps if max_rep else None), (defs if max_def else None), values


def _values(body: bytes, at: int, leaf: Node, encoding: int, count: int, dictionary: list[Any] | None) -> list[Any]:
    if encoding == 0:
        return _plain(body, at, leaf, count)[0]
    if encoding == 3 and leaf.physical == 0:  # booleans, run-length encoded (data pages v2)
        length = int.from_bytes(body[at:at + 4], "little")
        return [bool(v) for v in _hybrid(body, at + 4, at + 4 + length, 1, count)]
    if encoding in (2, 8):
        if dictionary is None:
            raise ParquetError("dictionary-encoded values with no dictionary page")
        width = body[at]
        return [dictionary[i] for i in _hybrid(body, at + 1, len(body), width, count)]
    raise ParquetError(f"values in {_ENCODINGS.get(encoding, encoding)} encoding, which count_tokens does not read "
                       "(it reads PLAIN and dictionary encodings)", unsupported=True)


def _width(max_level: int) -> int:
    return max_level.bit_length()


def _levels_v1(body: bytes, at: int, max_level: int, count: int) -> tuple[list[int], int]:
    length = int.from_bytes(body[at:at + 4], "little")
    return _hybrid(body, at + 4, at + 4 + length, _width(max_level), count), at + 4 + length


def _hybrid(data: bytes, pos: int, end: int, width: int, count: int) -> list[int]:
    """The RLE / bit-packed hybrid: runs of one value, and groups of eight values packed LSB first."""
    if count > _MAX_PAGE_VALUES:
        raise ParquetError(f"a page says it holds {count:,} values")
    out: list[int] = []
    if width == 0:
        return [0] * count
    size, mask = (width + 7) // 8, (1 << width) - 1
    while len(out) < count:
        if pos >= end:
            raise ParquetError("levels or indices run past their data")
        header, pos = varint(data, pos)
        if header & 1:
            groups = min(header >> 1, (count - len(out) + 7) // 8)  # (a run is never longer than what is left)
            packed = int.from_bytes(data[pos:pos + groups * width], "little")
            pos += groups * width
            out.extend((packed >> (i * width)) & mask for i in range(groups * 8))
        else:
            out.extend([int.from_bytes(data[pos:pos + size], "little")] * min(header >> 1, count - len(out)))
            pos += size
    del out[count:]
    return out


_FIXED = {1: ("i", 4), 2: ("q", 8), 4: ("f", 4), 5: ("d", 8)}


def _plain(body: bytes, at: int, leaf: Node, count: int) -> tuple[list[Any], int]:
    kind = leaf.physical
    least = {0: 1 / 8, 3: 12, 6: 4, 7: leaf.type_length}.get(kind, _FIXED.get(kind, ("", 1))[1])  # bytes a value
    if count < 0 or count * least > len(body) - at:
        raise ParquetError(f"a page says it holds {count:,} values in {len(body) - at:,} bytes")
    if kind in _FIXED:
        code, width = _FIXED[kind]
        if _unsigned(leaf):
            code = code.upper()
        raw = list(struct.unpack_from(f"<{count}{code}", body, at))
        return [_converted(leaf, v) for v in raw] if _needs_conversion(leaf) else raw, at + count * width
    if kind == 0:
        bits = int.from_bytes(body[at:at + (count + 7) // 8], "little")
        return [bool((bits >> i) & 1) for i in range(count)], at + (count + 7) // 8
    if kind == 6:
        text = _is_text(leaf)
        out = []
        for _ in range(count):
            size = int.from_bytes(body[at:at + 4], "little")
            value = body[at + 4:at + 4 + size]
            out.append(value.decode("utf-8", "replace") if text else _converted(leaf, value))
            at += 4 + size
        return out, at
    if kind in (3, 7):
        width = 12 if kind == 3 else leaf.type_length
        out = [_converted(leaf, body[at + i * width:at + (i + 1) * width]) for i in range(count)]
        return out, at + count * width
    raise ParquetError(f"unknown physical type {kind}")


def _is_text(leaf: Node) -> bool:
    """Bytes read as text as they are: strings, enums, JSON, or bytes with no type said (ClickHouse's String)."""
    return not (leaf.logical.keys() - {1, 4, 12}) and leaf.converted in (None, 0, 4, 19)


def _unsigned(leaf: Node) -> bool:
    integer = leaf.logical.get(10)
    if integer is not None:
        return integer.get(2) is False
    return leaf.converted in (11, 12, 13, 14)


def _needs_conversion(leaf: Node) -> bool:
    return bool(leaf.logical) or leaf.converted in (5, 6, 9, 10)


def _converted(leaf: Node, value: Any) -> Any:
    """A physical value as JSON would carry it, by the column's logical (or legacy converted) type."""
    try:
        return _as_json(leaf, value)
    except (OverflowError, ValueError):  # a time past what a datetime holds: the number as stored
        return value if not isinstance(value, bytes) else value.hex()


def _as_json(leaf: Node, value: Any) -> Any:
    logical, converted = leaf.logical, leaf.converted
    if leaf.physical == 3:  # INT96: nanoseconds of the day, then the Julian day
        nanos, day = int.from_bytes(value[:8], "little"), int.from_bytes(value[8:], "little")
        return _time_text(_EPOCH + timedelta(days=day - 2_440_588, microseconds=nanos // 1000), True)
    if 5 in logical or converted == 5:
        scale = (logical.get(5) or {}).get(1, leaf.scale)
        unscaled = int.from_bytes(value, "big", signed=True) if isinstance(value, bytes) else value
        return float(Decimal(unscaled).scaleb(-scale))
    if 8 in logical or converted in (9, 10):
        timestamp = logical.get(8) or {}
        unit = next(iter((timestamp.get(2) or {1: None}).keys())) if timestamp else (1 if converted == 9 else 2)
        utc = timestamp.get(1, True) if timestamp else True
        return _time_text(_EPOCH + timedelta(microseconds=value * _UNITS[unit]), utc)
    if 6 in logical or converted == 6:
        return (_EPOCH + timedelta(days=value)).date().isoformat()
    if 14 in logical and isinstance(value, bytes) and len(value) == 16:
        hexed = value.hex()
        return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _time_text(moment: datetime, utc: bool) -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text + "Z" if utc else text.replace("T", " ")
