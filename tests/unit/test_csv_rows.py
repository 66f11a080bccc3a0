"""CSV objects read by s3_records: the header, rows over several lines, fields as Langfuse writes them, and
every row that cannot be read a letter of its own. Expected records written out by hand."""

import csv
import io

import pytest
from conftest import OneObject

from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.metering.csv_rows import CsvRowError, csv_header, csv_record
from tokenmeter.metering.records import RawRecord, ReadLimits, Skipped
from tokenmeter.metering.s3_objects import s3_records


def read(body: bytes, **limits) -> list:
    return list(s3_records(OneObject(body), "logs", "exports/part.csv", ReadLimits(**limits)))


@pytest.mark.parametrize("line, names", [
    (b'"id","trace_id","usage_details"', ["id", "trace_id", "usage_details"]),
    (b"id,trace_id,attributes.gen_ai.response.id", ["id", "trace_id", "attributes.gen_ai.response.id"]),
    (b'\xef\xbb\xbf"id","type"\r', ["id", "type"]),  # a spreadsheet's BOM, a CRLF line end
])
def test_a_first_line_of_column_names_is_a_header(line, names):
    assert csv_header(line) == names


@pytest.mark.parametrize("line", [
    b'"id"',  # one column: a JSON string, not a table
    b"2026-11-20T10:15:02.120Z hello, world",  # a log line
    b"START RequestId: 8f2c, Version: $LATEST",
    b'{"id": "a", "type": "b"}',
    b'"id","id"',  # the same name twice: which would a field be?
    b'"id","",x',
    b'"id","type',  # a quote left open
    b'\xff"id","type"',
])
def test_other_first_lines_are_no_header(line):
    assert csv_header(line) is None


def test_fields_are_read_back_as_langfuse_wrote_them():
    header = ["id", "usage_details", "tags", "end_time", "total_cost", "input", "note"]
    row = '"g1","{""input"":""1200"",""output"":""310""}","[""a""]","","0.01","{""role"":""user""}","{not json"'
    assert csv_record(header, row) == {"id": "g1", "usage_details": {"input": "1200", "output": "310"}, "tags": ["a"],
                                       "end_time": None, "total_cost": "0.01", "input": {"role": "user"},
                                       "note": "{not json"}


def test_a_row_of_the_wrong_width_says_so():
    with pytest.raises(CsvRowError, match="3 fields where the header names 2 columns"):
        csv_record(["a", "b"], "1,2,3")
    with pytest.raises(CsvRowError, match="quote"):
        csv_record(["a", "b"], '1,x"y')


def test_a_file_reads_as_python_s_csv_module_reads_it():
    # A second reader: the standard library's, over a file written by it with every field quoted.
    rows = [{"id": "g1", "input": "first line\nsecond, with a comma", "output": 'she said "hi"\r\nbye'},
            {"id": "g2", "input": "", "output": "plain"},
            {"id": "g3", "input": '"""', "output": "\n\n"}]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "input", "output"], quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    body = out.getvalue().encode()
    records = read(body)
    expected = [{key: value or None for key, value in row.items()}
                for row in csv.DictReader(io.StringIO(body.decode(), newline=""))]
    assert [record.value for record in records] == expected
    # g1's fields break over lines 2-4 (its output's \r\n too), g3's output over lines 6-8.
    assert [record.source.rsplit("#", 1)[1] for record in records] == ["line=2", "line=5", "line=6"]
    assert len({record.identity for record in records}) == 3


def test_a_bad_row_is_a_letter_and_the_rows_after_it_are_read():
    body = b'"id","n"\n"a","1"\n"b","2","3"\n"c","4"\n'
    first, letter, last = read(body)
    assert first.value == {"id": "a", "n": "1"} and last.value == {"id": "c", "n": "4"}
    assert isinstance(letter, DeadLetter) and letter.reason == "decode_error"
    assert letter.source.endswith("#line=3") and "3 fields where the header names 2" in letter.detail
    assert letter.record == '"b","2","3"'


def test_a_row_past_the_record_limit_is_a_letter_with_its_bytes():
    long = "x" * 100
    body = f'"id","text"\n"a","{long}\n{long}"\n"b","short"\n'.encode()
    letter, after = read(body, max_record_bytes=150)
    # The row is lines 2-3: '"a","' (5 bytes) + 100 + the line break + 100 + '"' (1): 207 bytes from offset 12.
    assert letter.reason == "record_too_large" and letter.source.endswith("#line=2")
    assert "207 bytes" in letter.detail and "inflated bytes 12-218" in letter.detail
    assert isinstance(after, RawRecord) and after.value == {"id": "b", "text": "short"}


def test_a_quote_left_open_at_the_end_is_one_letter():
    records = read(b'"id","text"\n"a","fine"\n"b","never\nclosed\n')
    assert records[0].value == {"id": "a", "text": "fine"}
    assert [(r.reason, r.source.rsplit("#", 1)[1]) for r in records[1:]] == [("decode_error", "line=3")]


def test_a_header_alone_is_an_empty_export():
    [skipped] = read(b'"id","trace_id","usage_details"\n')
    assert isinstance(skipped, Skipped) and skipped.reason == "empty_object"


def test_invalid_utf8_in_a_row_is_replaced_and_flagged():
    [record] = read(b'"id","text"\n"a","caf\xe9"\n')
    assert record.value == {"id": "a", "text": "caf\ufffd"} and record.lossy
