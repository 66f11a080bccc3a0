"""Records as Node's util.inspect prints them, property-based: any JSON object printed the way util.inspect
prints it (bare identifier keys, quoted others, single quotes unless the string holds one) reads back as that
object; cut anywhere, or garbled, it is no record and the meter dead-letters it, never crashes."""

from __future__ import annotations

import json
import re

from conftest import Collect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenmeter.core import parse_config
from tokenmeter.metering.js_inspect import js_object
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import log_line

EXAMPLES = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*\Z")

values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def printed(value) -> str:
    """util.inspect's notation, written here independently of the reader."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[ " + ", ".join(printed(v) for v in value) + " ]" if value else "[]"
    items = [f"{k if IDENTIFIER.match(k) else _string(k)}: {printed(v)}" for k, v in value.items()]
    return "{\n  " + ",\n  ".join(items) + "\n}" if items else "{}"


def _string(text: str) -> str:
    body = "".join(_char(c) for c in text)
    if "'" not in text:
        return "'" + body + "'"
    if '"' not in text:
        return '"' + body + '"'
    return "'" + body.replace("'", "\\'") + "'"


def _char(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if c == "\n":
        return "\\n"
    if ord(c) < 0x20 or c == "\x7f":
        return f"\\x{ord(c):02X}"
    return c


@EXAMPLES
@given(st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=5))
def test_an_object_util_inspect_printed_reads_back_as_itself(value):
    assert js_object(printed(value)) == json.loads(json.dumps(value))


@EXAMPLES
@given(st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=5), st.data())
def test_a_printed_object_cut_or_garbled_is_a_dead_letter_at_worst(value, data):
    text = printed(value)
    cut = data.draw(st.integers(0, len(text)))
    garbage = data.draw(st.text(max_size=4))
    line = text[:cut] + garbage + text[cut:] if data.draw(st.booleans()) else text[:cut]
    sink = Collect()
    meter = Meter(parse_config({"default_subscription": "sub_1"}), TokenizerPool({}), sink)
    meter.add(log_line("cloudwatch:g:s:1", "cwl:1", "2026-11-15T12:00:00.000Z\treq\tINFO\t" + line, 1794744000000))
    summary = meter.finish()
    assert summary.records == summary.metered + sum(summary.dead_letters.values()) + sum(summary.skipped.values())
