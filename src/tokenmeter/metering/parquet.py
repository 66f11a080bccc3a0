"""The rows of a Parquet file, as the JSON objects a JSONL export of the same table would hold.

Langfuse's blob storage export writes Parquet by default (ClickHouse's own writer: zstd pages, PLAIN values, no
dictionary), as do many exporters (pyarrow's or Spark's: snappy, dictionary pages). Read here (apache/parquet-format):
the footer, each column chunk (parquet_pages.py: data pages v1 and v2, PLAIN and dictionary values, RLE/bit-packed
levels), and the rows put back together: optional and repeated fields at any depth, MAP and LIST as objects and
arrays (also their legacy shapes). Values as JSON has them: strings, numbers (unsigned kept unsigned, decimals as
floats), times as text (`2026-11-20T10:15:04.905000Z` where UTC; a date `2026-11-20`), bytes that are not text as
text with its bad bytes replaced. The DELTA and BYTE_STREAM_SPLIT encodings are not read: a column using them is an
error naming it, as are codecs parquet_codecs.py does not read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from .parquet_codecs import CodecError
from .parquet_pages import OPTIONAL, REPEATED, REQUIRED, Node, ParquetError, column_chunk
from .thrift_compact import ThriftError, read_struct

MAGIC = b"PAR1"


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


def _schema(elements: list[dict[int, Any]]) -> Node:
    """The schema's tree (its elements are written depth first, each with its number of children)."""
    position = 0

    def build() -> Node:
        nonlocal position
        element = elements[position]
        position += 1
        node = Node(element[4].decode("utf-8", "replace"), element.get(3, REQUIRED), element.get(1),
                     element.get(2, 0), element.get(6), element.get(10) or {}, element.get(7, 0))
        node.children = [build() for _ in range(element.get(5) or 0)]
        return node

    root = build()
    for child in root.children:  # the root is the row itself: its fields' levels start at 0
        _levels(child, 0, 0)
    return root


def _levels(node: Node, parent_def: int, parent_rep: int) -> None:
    node.def_level = parent_def + (node.repetition != REQUIRED)
    node.rep_level = parent_rep + (node.repetition == REPEATED)
    for child in node.children:
        _levels(child, node.def_level, node.rep_level)


def _leaf_paths(node: Node, path: list[Node]) -> Iterator[list[Node]]:
    """Each column's nodes, from its top-level field down to itself."""
    for child in node.children:
        if child.physical is None:
            yield from _leaf_paths(child, path + [child])
        else:
            yield path + [child]


def _row_group(data: bytes, group: dict[int, Any], root: Node,
               leaves: dict[tuple[str, ...], list[Node]]) -> Iterator[dict[str, Any]]:
    rows = group.get(3, 0)
    columns: dict[str, list[tuple[list[Node], Any, Any, list[Any]]]] = {}
    for chunk in group.get(1) or []:
        meta = chunk.get(3)
        if meta is None:
            raise ParquetError("a column chunk kept in another file")
        path = tuple(part.decode("utf-8", "replace") for part in meta[3])
        nodes = leaves.get(path)
        if nodes is None:
            raise ParquetError(f"column {'.'.join(path)} is not in the schema")
        try:
            columns.setdefault(nodes[0].name, []).append((nodes, *column_chunk(data, meta, nodes[-1])))
        except (ParquetError, CodecError) as exc:
            raise ParquetError(f"column {'.'.join(path)}: {exc}", exc.unsupported) from None
    tops = {child.name: child for child in root.children}
    fields = {name: _field(tops[name], columns[name], rows) for name in tops if name in columns}
    if rows and not fields:
        raise ParquetError(f"{rows:,} rows and no column")
    for index in range(rows):
        yield {name: values[index] for name, values in fields.items()}


def _field(top: Node, leaves: list[tuple[list[Node], Any, Any, list[Any]]], rows: int) -> list[Any]:
    """One top-level field's value in each row, from its columns."""
    if len(leaves) == 2 and _is_plain_map(top):
        return _maps(top, leaves, rows)
    assembled = None
    for nodes, reps, defs, values in leaves:
        column = _assemble(nodes, reps, defs, values, rows)
        assembled = column if assembled is None else [_merge(a, b) for a, b in zip(assembled, column)]
    if top.physical is not None and top.repetition != REPEATED:
        return assembled  # type: ignore[return-value]
    return [_shape(top, value) for value in assembled]  # type: ignore[union-attr]


def _is_plain_map(node: Node) -> bool:
    """A MAP of two single values, not itself repeated: Langfuse's usage, cost and metadata, the usual map."""
    if not node.is_map() or node.repetition == REPEATED or len(node.children) != 1:
        return False
    entries = node.children[0]
    key, value = entries.children if len(entries.children) == 2 else (None, None)
    return (entries.repetition == REPEATED and key is not None and key.physical is not None
            and key.repetition == REQUIRED and value.physical is not None and value.repetition != REPEATED)


def _maps(top: Node, leaves: list[tuple[list[Node], Any, Any, list[Any]]], rows: int) -> list[Any]:
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


def _assemble(nodes: list[Node], reps: list[int] | None, defs: list[int] | None, values: list[Any],
              rows: int) -> list[Any]:
    """One leaf column's share of each row's top-level field: groups as one-key dicts, repeated fields as lists,
    absent ones as None (record shredding undone, apache/parquet-format's Dremel levels)."""
    try:
        return _assembled(nodes, reps, defs, values, rows)
    except (StopIteration, KeyError):  # levels that say more values, or deeper lists, than the column has
        raise ParquetError("its levels do not match its values") from None


def _assembled(nodes: list[Node], reps: list[int] | None, defs: list[int] | None, values: list[Any],
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
    repeated = {node.rep_level: depth for depth, node in enumerate(nodes) if node.repetition == REPEATED}

    def make(depth: int, d: int) -> Any:
        node = nodes[depth]
        if node.repetition == OPTIONAL and d < node.def_level:
            return None
        if node.repetition == REPEATED:
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


def _shape(node: Node, value: Any) -> Any:
    """A field's assembled value in JSON's shape: MAP as an object, LIST as an array, a group as an object."""
    if node.repetition == REPEATED:
        return None if value is None else [_content(node, item) for item in value]
    return _content(node, value)


def _content(node: Node, value: Any) -> Any:
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
