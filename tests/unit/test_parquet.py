"""count_tokens' Parquet reader (metering/parquet.py) against a second implementation: pyarrow writes tables of
random schemas (nesting, nulls, every codec read, pages v1 and v2, dictionaries or none, many pages and row
groups), and the rows read must be the table's rows, in JSON's shape. (pyarrow's own reading of its files is not
the reference: it reads a row of an all-null list of booleans in a v2 page as no row at all.) A file ClickHouse
wrote as Langfuse's export does (tests/fixtures/make_langfuse_parquet.py) is read as pyarrow reads it."""

from __future__ import annotations

import io
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmeter.metering.parquet import ParquetError, parquet_rows
from tokenmeter.metering.parquet_codecs import CodecError, lz4_block, snappy

FIXTURE = Path(__file__).parent.parent / "fixtures" / "langfuse_observations_v2.parquet"


def as_json(value, kind: pa.DataType):
    """What a JSONL export would hold for a value pyarrow read: the reader's contract, written out again."""
    if value is None:
        return None
    if pa.types.is_map(kind):
        return {k: as_json(v, kind.item_type) for k, v in value}
    if pa.types.is_list(kind):
        return [as_json(v, kind.value_type) for v in value]
    if pa.types.is_struct(kind):
        return {field.name: as_json(value[field.name], field.type) for field in kind}
    if pa.types.is_timestamp(kind):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if kind.tz else value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def json_rows(table: pa.Table) -> list[dict]:
    return [{field.name: as_json(row[field.name], field.type) for field in table.schema} for row in table.to_pylist()]


def written(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


_INSTANTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
PRIMITIVES = [
    (pa.string(), st.text(max_size=12)),
    (pa.binary(), st.binary(max_size=12)),
    (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    (pa.uint64(), st.integers(0, 2**64 - 1)),
    (pa.float64(), st.floats(allow_nan=False)),
    (pa.bool_(), st.booleans()),
    (pa.timestamp("us", tz="UTC"), _INSTANTS.map(lambda d: d.replace(tzinfo=UTC))),
    (pa.timestamp("ms"), _INSTANTS.map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))),
    (pa.date32(), st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))),
    (pa.decimal128(18, 4), st.decimals(min_value=-(10**13), max_value=10**13, places=4, allow_nan=False)),
]


def _nullable(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), values)


def _nested(children: st.SearchStrategy) -> st.SearchStrategy:
    def wrap(pair, how):
        kind, values = pair
        if how == "list":
            return pa.list_(kind), st.lists(_nullable(values), max_size=4)
        if how == "map":
            return pa.map_(pa.string(), kind), st.dictionaries(st.text(max_size=5), _nullable(values), max_size=4).map(
                lambda d: list(d.items()))
        return (pa.struct([("a", kind), ("b", pa.string())]),
                st.fixed_dictionaries({"a": _nullable(values), "b": _nullable(st.text(max_size=4))}))

    return st.tuples(children, st.sampled_from(["list", "map", "struct"])).map(lambda t: wrap(*t))


COLUMN_TYPES = st.recursive(st.sampled_from(PRIMITIVES), _nested, max_leaves=4)


@st.composite
def tables(draw) -> pa.Table:
    rows = draw(st.integers(0, 40))
    columns = {}
    for index in range(draw(st.integers(1, 4))):
        kind, values = draw(COLUMN_TYPES)
        columns[f"c{index}"] = pa.array(draw(st.lists(_nullable(values), min_size=rows, max_size=rows)), type=kind)
    return pa.table(columns)


@settings(max_examples=int(os.environ.get("PARQUET_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(table=tables(), compression=st.sampled_from(["none", "snappy", "gzip", "zstd", "lz4"]),
       dictionary=st.booleans(), page_version=st.sampled_from(["1.0", "2.0"]),
       row_group=st.integers(1, 50), page_size=st.sampled_from([64, 1 << 20]))
def test_every_file_reads_as_pyarrow_reads_it(table, compression, dictionary, page_version, row_group, page_size):
    data = written(table, compression=compression, use_dictionary=dictionary, data_page_version=page_version,
                   row_group_size=row_group, data_page_size=page_size)
    assert list(parquet_rows(data)) == json_rows(table)


def test_a_file_clickhouse_wrote_as_langfuse_exports_reads_as_pyarrow_reads_it():
    data = FIXTURE.read_bytes()
    rows = list(parquet_rows(data))
    assert rows == json_rows(pq.read_table(io.BytesIO(data)))
    # What the export's JSONL holds for the same observation, by hand.
    g1 = rows[1]
    assert g1["id"] == "g1" and g1["end_time"] == "2026-11-20T10:15:04.905000Z"
    assert g1["usage_details"] == {"input": 1200, "input_cached_tokens": 800, "output": 310, "total": 2310}
    assert g1["metadata"] == {"customer": "sub_42"} and rows[0]["parent_observation_id"] is None


def test_nested_lists_of_records_keep_their_shape():
    kind = pa.list_(pa.struct([("name", pa.string()), ("tokens", pa.map_(pa.string(), pa.int64())),
                               ("steps", pa.list_(pa.list_(pa.int32())))]))
    value = [[{"name": "a", "tokens": [("input", 3)], "steps": [[1, 2], [], None, [None]]}, None,
              {"name": None, "tokens": [], "steps": None}], [], None]
    data = written(pa.table({"calls": pa.array(value, type=kind)}), data_page_size=64)
    assert list(parquet_rows(data)) == [
        {"calls": [{"name": "a", "tokens": {"input": 3}, "steps": [[1, 2], [], None, [None]]}, None,
                   {"name": None, "tokens": {}, "steps": None}]},
        {"calls": []}, {"calls": None}]


def test_codecs_and_encodings_not_read_are_named_and_a_damaged_file_is_not_taken_for_one():
    table = pa.table({"tokens": pa.array(range(100), type=pa.int64())})
    brotli = written(table, compression="brotli")
    with pytest.raises(ParquetError, match="BROTLI") as raised:
        list(parquet_rows(brotli))
    assert raised.value.unsupported
    delta = written(table, use_dictionary=False, column_encoding={"tokens": "DELTA_BINARY_PACKED"})
    with pytest.raises(ParquetError, match="DELTA_BINARY_PACKED") as raised:
        list(parquet_rows(delta))
    assert raised.value.unsupported
    plain = written(table, compression="zstd")
    for damaged in (plain[:-20] + plain[-8:], plain[:30] + bytes(40) + plain[70:], plain[: len(plain) // 2]):
        with pytest.raises(ParquetError) as raised:
            list(parquet_rows(damaged))
        assert not raised.value.unsupported


@given(st.lists(st.binary(min_size=1, max_size=40), max_size=30), st.randoms(use_true_random=False))
def test_snappy_and_lz4_blocks_inflate_as_pyarrow_compressed_them(pieces, rng):
    # Repeats (so back-references, overlapping ones too) among literals.
    data = b"".join(piece * rng.randint(1, 70) for piece in pieces)
    assert snappy(pa.compress(data, "snappy", asbytes=True), len(data)) == data
    assert lz4_block(pa.compress(data, "lz4_raw", asbytes=True), len(data)) == data


def test_a_back_reference_before_the_start_is_an_error_not_a_crash():
    with pytest.raises(CodecError):
        snappy(bytes([10, 0x01 | (3 << 2), 5]), 10)  # a copy of 7 bytes, 5 back, with nothing written


@settings(max_examples=int(os.environ.get("PARQUET_EXAMPLES", "300")), deadline=None)
@given(st.data())
def test_a_damaged_file_is_a_parquet_error_never_a_crash_or_a_hang(data):
    table = pa.table({"id": ["g1", None, "g3"], "usage": pa.array([[("input", 3)], [], None],
                                                                  type=pa.map_(pa.string(), pa.int64())),
                      "tags": pa.array([["a"], None, []], type=pa.list_(pa.string()))})
    whole = bytearray(written(table, compression=data.draw(st.sampled_from(["none", "snappy", "zstd"])),
                              use_dictionary=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(4, len(whole) - 5))
        whole[at] = data.draw(st.integers(0, 255))
    try:
        for row in parquet_rows(bytes(whole)):
            assert set(row) <= {"id", "usage", "tags"}
    except ParquetError:
        pass
