"""CSV objects read by s3_records: the header, rows over several lines, fields as Langfuse writes them, and
every row that cannot be read a letter of its own. Expected records written out by hand."""

import csv
import io

import pytest
from conftest import OneObject, meter_lines
from hypothesis import given, settings
from hypothesis import strategies as st

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
    header = ["id", "usage_details", "tags", "end_time", "total_cost", "input", "note", "level", "public"]
    row = ('"g1","{""input"":""1200"",""output"":""310""}","[""a""]","","0.01","{""role"":""user""}","{not json",'
           '"3","false"')
    assert csv_record(header, row) == {"id": "g1", "usage_details": {"input": "1200", "output": "310"}, "tags": ["a"],
                                       "end_time": None, "total_cost": "0.01", "input": {"role": "user"},
                                       "note": "{not json", "level": 3, "public": False}


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1100", 1100), ("-5", -5), ("123456789012345678", 123456789012345678),
    # Text that a number would not give back: left as it is written.
    ("007", "007"), ("+5", "+5"), ("1e3", "1e3"), ("10.5", "10.5"), ("1234567890123456789", "1234567890123456789"),
    ("٣", "٣"), ("True", "True"), ("null", "null"), ("-", "-"),
])
def test_a_whole_number_is_read_back_only_where_its_text_is_the_number_s_own(text, value):
    assert csv_record(["a", "b"], f"x,{text}") == {"a": "x", "b": value}


def test_a_column_named_as_an_id_stays_text():
    header = ["id", "trace_id", "requestId", "span.id", "ID", "tokens", "paid"]
    # A span id of 16 hex digits that are all decimal ones, a numeric request id: ids, not numbers.
    assert csv_record(header, '"1234567890123456","42","7","9","","1100","true"') == {
        "id": "1234567890123456", "trace_id": "42", "requestId": "7", "span.id": "9", "ID": None, "tokens": 1100,
        "paid": True}


def test_a_row_of_the_wrong_width_says_so():
    with pytest.raises(CsvRowError, match="3 fields where the header names 2 columns"):
        csv_record(["a", "b"], "1,2,3")
    with pytest.raises(CsvRowError, match="quote"):
        csv_record(["a", "b"], '1,"x')
    with pytest.raises(CsvRowError, match="quote"):
        csv_record(["a", "b"], '1,"x"y')


def test_a_field_past_the_csv_module_s_size_limit_is_read_whole():
    # A prompt longer than the 128 KiB Python's csv module takes in a field: the row is read all the same.
    prompt = "word, " * 50_000
    assert csv_record(["id", "input"], f'"a","{prompt}"') == {"id": "a", "input": prompt}


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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(alphabet='a,"\n\r \té', max_size=10), min_size=3, max_size=3), max_size=6),
       st.sampled_from([csv.QUOTE_ALL, csv.QUOTE_MINIMAL]), st.sampled_from(["\n", "\r\n"]))
def test_any_text_fields_read_back_as_the_csv_module_reads_them(rows, quoting, end):
    # Each field starts with "x" where it is not empty: text no field is read back from (a number, JSON, true).
    rows = [[f"x{text}" if text else "" for text in row] for row in rows]
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator=end)
    writer.writerow(["id", "input", "output"])
    writer.writerows(rows)
    expected = [{key: value or None for key, value in row.items()}
                for row in csv.DictReader(io.StringIO(out.getvalue(), newline=""))]
    records = read(out.getvalue().encode())
    assert [record.value for record in records if isinstance(record, RawRecord)] == expected
    assert all(isinstance(record, RawRecord) for record in records) or (not expected and len(records) == 1)


def test_a_bad_row_is_a_letter_and_the_rows_after_it_are_read():
    body = b'"id","n"\n"a","1"\n"b","2","3"\n"c","4"\n'
    first, letter, last = read(body)
    assert first.value == {"id": "a", "n": 1} and last.value == {"id": "c", "n": 4}
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


def test_a_postgres_export_of_litellm_s_spend_logs_bills_its_rows():
    # `COPY "LiteLLM_SpendLogs" TO ... (FORMAT csv, HEADER)`: quoted only where needed, NULL empty, jsonb as JSON
    # text, timestamp(3) without its zone and its fraction's trailing zeros.
    columns = ["request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens", "completion_tokens",
               "startTime", "endTime", "completionStartTime", "model", "model_id", "model_group", "custom_llm_provider",
               "api_base", "user", "metadata", "cache_hit", "cache_key", "request_tags", "team_id", "end_user",
               "requester_ip_address", "messages", "response", "session_id", "status"]
    rows = [["chatcmpl-9d8e7f6a5b4c3d2e1f0a9b8c", "acompletion", "88dc28d0f0", "0.00071", "1250", "1100", "150",
             "2024-12-26 23:06:26.12", "2024-12-26 23:06:27.274", "", "gpt-4o-2024-08-06", "a3f5c1", "gpt-4o", "openai",
             "https://api.openai.com/v1", "", '{"user_api_key_team_id": "t1", "note": "a, b"}', "False", "", "[]", "",
             "cust-9", "", "{}", "{}", "", "success"],
            ["chatcmpl-0a1b2c3d4e5f", "acompletion", "88dc28d0f0", "0", "900", "800", "100",
             "2024-12-26 23:07:00", "2024-12-26 23:07:01.5", "", "gpt-4o-2024-08-06", "a3f5c1", "gpt-4o", "openai",
             "https://api.openai.com/v1", "", "{}", "True", "", "[]", "", "cust-9", "", "{}", "{}", "", "success"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    records = read(out.getvalue().encode())
    summary, delivered = meter_lines([record.value for record in records], {"subscription_from": ["end_user"]})
    assert dict(summary.skipped) == {"proxy_cache_hit": 1}  # the second: LiteLLM's cache answered it
    assert delivered.totals() == {("cust-9", "input"): 1100, ("cust-9", "output"): 150}
    assert {(e.timestamp, e.properties["model"]) for e in delivered.events} == {("1735254387.274", "gpt-4o-2024-08-06")}
    # The same row as /spend/logs answers it in JSON: the same events, ids included.
    as_json = {**dict(zip(columns, rows[0], strict=True)), "spend": 0.00071, "total_tokens": 1250,
               "prompt_tokens": 1100, "completion_tokens": 150, "metadata": {"user_api_key_team_id": "t1"},
               "startTime": "2024-12-26T23:06:26.120Z", "endTime": "2024-12-26T23:06:27.274Z"}
    _, from_json = meter_lines([as_json], {"subscription_from": ["end_user"]})
    assert from_json.events == delivered.events
