"""The rows of a Parquet file, as the JSON objects a JSONL export of the same table would hold.

Langfuse's blob storage export writes Parquet by default (ClickHouse's own writer: zstd pages, PLAIN values, no
dictionary), as do many exporters (pyarrow's or Spark's: snappy, dictionary pages). Read here (apache/parquet-format): data pages v1 and v2, PLAIN and dictionary values, the
RLE/bit-packed levels, optional and repeated fields at any depth, MAP and LIST as objects and arrays (also their
legacy shapes). Values as JSON has them: strings, numbers (unsigned kept unsigned, decimals as floats), times as
text (`2026-11-20T10:15:04.905000Z` where UTC; a date `2026-11-20`), bytes that are not text as text with its
bad bytes replaced. The DELTA and BYTE_STREAM_SPLIT encodings are not read: a column using them is an error
naming it, as are codecs parquet_codecs.py does not read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .parquet_codecs import CodecError, decompress
from .thrift_compact import ThriftError, read_struct

MAGIC = b"PAR1"
_REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2
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
class _Node:
    name: str
    repetition: int
    physical: int | None  # None for a group
    type_length: int = 0
    converted: int | None = None
    logical: dict[int, Any] = field(default_factory=dict)
    scale: int = 0
    children: list[_Node] = field(default_factory=list)
    def_level: int = 0  # of this node: how many of its ancestors and itself can be absent
    rep_level: int = 0

    def is_map(self) -> bool:
        return self.converted in (1, 2) or 2 in self.logical

    def is_list(self) -> bool:
        return self.converted == 3 or 3 in self.logical


def parquet_rows(data: bytes) -> Iterator[dict[str, Any]]:
    """Each row of the file, row group by row group; ParquetError where the file (or the rest of it) is unreadable."""
    if len(data) < 12 or data[:4] != MAGIC or data[-4:] != MAGIC:
        raise ParquetError("not a whole Parquet file (no PAR1 at both ends)")
    footer_size = int.from_bytes(data[-8:-4], "little")
    if footer_size > len(data) - 12:
        raise ParquetError("its footer is longer than the file")
    try:
        meta, _ = read_struct(data, len(data) - 8 - footer_size)
        root = _schema(meta.get(2) or [])
        leaves = {tuple(node.name for node in nodes): nodes for nodes in _leaf_paths(root, [])}
        groups = meta.get(4) or []
        if type(groups) is not list:
            raise TypeError("its row groups are not a list")
    except (ThriftError, KeyError, IndexError, TypeError, AttributeError, RecursionError, struct.error) as exc:
        raise ParquetError(f"its footer is unreadable: {type(exc).__name__}: {exc}") from None
    for number, group in enumerate(groups):
        try:
            yield from _row_group(data, group, root, leaves)
        except (ParquetError, CodecError) as exc:
            raise ParquetError(f"row group {number}: {exc}", exc.unsupported) from None
        except (ThriftError, ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError,
                struct.error) as exc:
            raise ParquetError(f"row group {number} is unreadable: {type(exc).__name__}: {exc}") from None


def _schema(elements: list[dict[int, Any]]) -> _Node:
    """The schema's tree (its elements are written depth first, each with its number of children)."""
    position = 0

    def build() -> _Node:
        nonlocal position
        element = elements[position]
        position += 1
        node = _Node(element[4].decode("utf-8", "replace"), element.get(3, _REQUIRED), element.get(1),
                     element.get(2, 0), element.get(6), element.get(10) or {}, element.get(7, 0))
        node.children = [build() for _ in range(element.get(5) or 0)]
        return node

    root = build()
    for child in root.children:  # the root is the row itself: its fields' levels start at 0
        _levels(child, 0, 0)
    return root


def _levels(node: _Node, parent_def: int, parent_rep: int) -> None:
    node.def_level = parent_def + (node.repetition != _REQUIRED)
    node.rep_level = parent_rep + (node.repetition == _REPEATED)
    for child in node.children:
        _levels(child, node.def_level, node.rep_level)


def _leaf_paths(node: _Node, path: list[_Node]) -> Iterator[list[_Node]]:
    """Each column's nodes, from its top-level field down to itself."""
    for child in node.children:
        if child.physical is None:
            yield from _leaf_paths(child, path + [child])
        else:
            yield path + [child]


def _row_group(data: bytes, group: dict[int, Any], root: _Node,
               leaves: dict[tuple[str, ...], list[_Node]]) -> Iterator[dict[str, Any]]:
    rows = group.get(3, 0)
    columns: dict[str, list[tuple[list[_Node], Any, Any, list[Any]]]] = {}
    for chunk in group.get(1) or []:
        meta = chunk.get(3)
        if meta is None:
            raise ParquetError("a column chunk kept in another file")
        path = tuple(part.decode("utf-8", "replace") for part in meta[3])
        nodes = leaves.get(path)
        if nodes is None:
            raise ParquetError(f"column {'.'.join(path)} is not in the schema")
        try:
            columns.setdefault(nodes[0].name, []).append((nodes, *_column(data, meta, nodes[-1])))
        except (ParquetError, CodecError) as exc:
            raise ParquetError(f"column {'.'.join(path)}: {exc}", exc.unsupported) from None
    tops = {child.name: child for child in root.children}
    fields = {name: _field(tops[name], columns[name], rows) for name in tops if name in columns}
    if rows and not fields:
        raise ParquetError(f"{rows:,} rows and no column")
    for index in range(rows):
        yield {name: values[index] for name, values in fields.items()}


def _field(top: _Node, leaves: list[tuple[list[_Node], Any, Any, list[Any]]], rows: int) -> list[Any]:
    """One top-level field's value in each row, from its columns."""
    if len(leaves) == 2 and _is_plain_map(top):
        return _maps(top, leaves, rows)
    assembled = None
    for nodes, reps, defs, values in leaves:
        column = _assemble(nodes, reps, defs, values, rows)
        assembled = column if assembled is None else [_merge(a, b) for a, b in zip(assembled, column)]
    if top.physical is not None and top.repetition != _REPEATED:
        return assembled  # type: ignore[return-value]
    return [_shape(top, value) for value in assembled]  # type: ignore[union-attr]


def _is_plain_map(node: _Node) -> bool:
    """A MAP of two single values, not itself repeated: Langfuse's usage, cost and metadata, the usual map."""
    if not node.is_map() or node.repetition == _REPEATED or len(node.children) != 1:
        return False
    entries = node.children[0]
    key, value = entries.children if len(entries.children) == 2 else (None, None)
    return (entries.repetition == _REPEATED and key is not None and key.physical is not None
            and key.repetition == _REQUIRED and value.physical is not None and value.repetition != _REPEATED)


def _maps(top: _Node, leaves: list[tuple[list[_Node], Any, Any, list[Any]]], rows: int) -> list[Any]:
    """A plain map's rows straight from its key and value columns (their levels agree above the entry)."""
    entries = top.children[0]
    by_name = {nodes[-1].name: (nodes[-1], reps, defs, values) for nodes, reps, defs, values in leaves}
    key_node, value_node = entries.children
    _, reps, defs, keys = by_name[key_node.name]
    _, _, value_defs, values = by_name[value_node.name]
    if reps is None or defs is None or (value_defs is not None and len(value_defs) != len(defs)):
        raise ParquetError(f"map {top.name}: its levels do not match")
    out: list[Any] = []
    current: dict[str, Any] = {}
    next_key, next_value = iter(keys).__next__, iter(values).__next__
    value_def = value_node.def_level
    try:
        for i, d in enumerate(defs):
            if reps[i] == 0:
                current = {} if d >= top.def_level else None  # type: ignore[assignment]
                out.append(current)
            if d >= entries.def_level:
                key = next_key()
                current[key if isinstance(key, str) else str(key)] = (
                    next_value() if value_defs is None or value_defs[i] == value_def else None)
    except (StopIteration, TypeError):
        raise ParquetError(f"map {top.name}: its levels do not match its values") from None
    if len(out) != rows:
        raise ParquetError(f"map {top.name}: {len(out):,} rows where the row group says {rows:,}")
    return out


def _column(data: bytes, meta: dict[int, Any], leaf: _Node) -> tuple[list[int] | None, list[int] | None, list[Any]]:
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


def _values(body: bytes, at: int, leaf: _Node, encoding: int, count: int, dictionary: list[Any] | None) -> list[Any]:
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
        header = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            header |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
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


def _plain(body: bytes, at: int, leaf: _Node, count: int) -> tuple[list[Any], int]:
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


def _is_text(leaf: _Node) -> bool:
    """Bytes read as text as they are: strings, enums, JSON, or bytes with no type said (ClickHouse's String)."""
    return not (leaf.logical.keys() - {1, 4, 12}) and leaf.converted in (None, 0, 4, 19)


def _unsigned(leaf: _Node) -> bool:
    integer = leaf.logical.get(10)
    if integer is not None:
        return integer.get(2) is False
    return leaf.converted in (11, 12, 13, 14)


def _needs_conversion(leaf: _Node) -> bool:
    return bool(leaf.logical) or leaf.converted in (5, 6, 9, 10)


def _converted(leaf: _Node, value: Any) -> Any:
    """A physical value as JSON would carry it, by the column's logical (or legacy converted) type."""
    try:
        return _as_json(leaf, value)
    except (OverflowError, ValueError):  # a time past what a datetime holds: the number as stored
        return value if not isinstance(value, bytes) else value.hex()


def _as_json(leaf: _Node, value: Any) -> Any:
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


def _assemble(nodes: list[_Node], reps: list[int] | None, defs: list[int] | None, values: list[Any],
              rows: int) -> list[Any]:
    """One leaf column's share of each row's top-level field: groups as one-key dicts, repeated fields as lists,
    absent ones as None (record shredding undone, apache/parquet-format's Dremel levels)."""
    try:
        return _assembled(nodes, reps, defs, values, rows)
    except (StopIteration, KeyError):  # levels that say more values, or deeper lists, than the column has
        raise ParquetError("its levels do not match its values") from None


def _assembled(nodes: list[_Node], reps: list[int] | None, defs: list[int] | None, values: list[Any],
               rows: int) -> list[Any]:
    max_def = nodes[-1].def_level
    if reps is None and len(nodes) == 1:  # a top-level column of single values: most columns
        if len(defs if defs is not None else values) != rows:
            raise ParquetError(f"{len(defs if defs is not None else values):,} values where the row group says {rows:,}")
        if defs is None:
            return values
        found = iter(values)
        return [next(found) if d == max_def else None for d in defs]
    out: list[Any] = []
    open_lists: dict[int, list[Any]] = {}
    found = iter(values)
    repeated = {node.rep_level: depth for depth, node in enumerate(nodes) if node.repetition == _REPEATED}

    def make(depth: int, d: int) -> Any:
        node = nodes[depth]
        if node.repetition == _OPTIONAL and d < node.def_level:
            return None
        if node.repetition == _REPEATED:
            if d < node.def_level:
                return []
            open_lists[depth] = [element(depth, d)]
            return open_lists[depth]
        return element(depth, d)

    def element(depth: int, d: int) -> Any:
        if depth == len(nodes) - 1:
            return next(found)
        return {nodes[depth + 1].name: make(depth + 1, d)}

    count = len(defs) if defs is not None else len(reps or values)
    for i in range(count):
        d = defs[i] if defs is not None else max_def
        r = reps[i] if reps is not None else 0
        if r == 0:
            out.append(make(0, d))
        else:
            depth = repeated[r]
            open_lists[depth].append(element(depth, d))
    if len(out) != rows:
        raise ParquetError(f"{len(out):,} rows where the row group says {rows:,}")
    return out


def _merge(a: Any, b: Any) -> Any:
    """Two leaves' shares of one field, put together (they agree on every list's length and every absence)."""
    if type(a) is dict and type(b) is dict:
        return {**a, **{key: _merge(a[key], value) if key in a else value for key, value in b.items()}}
    if type(a) is list and type(b) is list:
        return [_merge(x, y) for x, y in zip(a, b)]
    return a


def _shape(node: _Node, value: Any) -> Any:
    """A field's assembled value in JSON's shape: MAP as an object, LIST as an array, a group as an object."""
    if node.repetition == _REPEATED:
        return None if value is None else [_content(node, item) for item in value]
    return _content(node, value)


def _content(node: _Node, value: Any) -> Any:
    if value is None or node.physical is not None:
        return value
    if node.is_map() and len(node.children) == 1:
        entries = node.children[0]
        pairs = value.get(entries.name) or []
        key, val = (entries.children + [None, None])[:2]
        return {_key(_content(key, pair.get(key.name))) if key else "": _content(val, pair.get(val.name)) if val else None
                for pair in pairs}
    if node.is_list() and len(node.children) == 1:
        repeated = node.children[0]
        items = value.get(repeated.name) or []
        if repeated.children and len(repeated.children) == 1 and repeated.name not in ("array", f"{node.name}_tuple"):
            element = repeated.children[0]
            return [_shape(element, item.get(element.name)) for item in items]
        return [_content(repeated, item) for item in items]
    return {child.name: _shape(child, value.get(child.name)) for child in node.children if child.name in value}


def _key(key: Any) -> str:
    return key if isinstance(key, str) else str(key)
