"""Records a Node.js function logged with console.log(object) in Lambda's text log format: util.inspect's
notation (bare keys, single quotes, `[Object]` past two levels), read as the same record would be as JSON.
The printed forms follow util.inspect's rules (Node's documentation: depth 2, strings in single quotes unless
they hold one); the counts billed are the record's own, worked out by hand."""

import json

import pytest
from conftest import Collect

from tokenmeter.core import parse_config
from tokenmeter.metering.js_inspect import js_object
from tokenmeter.metering.metering import Meter
from tokenmeter.metering.tokenizer_pool import TokenizerPool
from tokenmeter.metering.triggers import log_line

PREFIX = "2024-11-26T18:40:00.123Z\t8f1e2d3c-aaaa-bbbb-cccc-1234567890ab\tINFO\t"
# console.log(completion) of the OpenAI Node SDK's chat completion: the message is three levels down.
OPENAI = """{
  id: 'chatcmpl-Bn6Dmt9mK9Y3Wq8kDmGGCn1G5rFfS',
  object: 'chat.completion',
  created: 1732646400,
  model: 'gpt-4o-mini-2024-07-18',
  choices: [
    {
      index: 0,
      message: [Object],
      logprobs: null,
      finish_reason: 'stop'
    }
  ],
  usage: {
    prompt_tokens: 1200,
    completion_tokens: 300,
    total_tokens: 1500,
    prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 100,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0
    }
  },
  service_tier: 'default',
  system_fingerprint: 'fp_0ba0d124f1',
  user: 'sub_acme'
}"""
# console.log("reply", message) of the Anthropic SDK's message, with its customer beside it.
ANTHROPIC = """reply {
  id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-20250514',
  content: [ [Object] ],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: {
    input_tokens: 25,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 100,
    output_tokens: 15,
    service_tier: 'standard'
  },
  metadata: { customer: "o'reilly-media" }
}"""


def meter(*messages: str):
    config = parse_config({})
    sink = Collect()
    meter = Meter(config, TokenizerPool({}), sink)
    for n, message in enumerate(messages):
        meter.add(log_line(f"cloudwatch:/aws/lambda/chat:stream:{n}", f"cwl:{n}", PREFIX + message, 1732646400123))
    return meter.finish(), sink


def billed(sink) -> list[tuple[str, str, int]]:
    return sorted((e.external_subscription_id, e.properties["token_type"], e.properties["tokens"]) for e in sink.events)


def test_a_node_functions_console_log_of_a_response_bills_as_its_json_would():
    summary, sink = meter(OPENAI, ANTHROPIC)
    assert sink.dead_letters == [] and summary.metered == 2
    # OpenAI: 1,200 prompt tokens of which 1,024 cached; 300 completion tokens of which 100 reasoning.
    # Anthropic: its counts as reported, cache reads apart from its input.
    assert billed(sink) == [("o'reilly-media", "cached_input", 100), ("o'reilly-media", "input", 25),
                            ("o'reilly-media", "output", 15),
                            ("sub_acme", "cached_input", 1024), ("sub_acme", "input", 176), ("sub_acme", "output", 200),
                            ("sub_acme", "reasoning", 100)]


def test_util_inspect_strings_and_elisions():
    printed = ("{ a: 'it\\'s', b: \"say 'hi'\", c: `both ' and \"`, 'x-request-id': 'req_1', d: 'tab\\tnul\\x00',"
               " e: undefined, f: [Function: f], g: [ 1, 2, ... 98 more items ], h: 10n, i: [Circular *1],"
               " j: [Object: null prototype] { k: NaN }, l: Usage { n: -1.5e3 } }")
    assert js_object(printed) == {"a": "it's", "b": "say 'hi'", "c": "both ' and \"", "x-request-id": "req_1",
                                  "d": "tab\tnul\x00", "e": None, "f": None, "g": [1, 2], "h": 10, "i": None,
                                  "j": {"k": None}, "l": {"n": -1500.0}}


def test_a_date_is_its_iso_string():
    assert js_object("{ timestamp: 2024-11-26T18:40:00.123Z, b: [ 2024-11-26T18:40:00Z ] }") == {
        "timestamp": "2024-11-26T18:40:00.123Z", "b": ["2024-11-26T18:40:00Z"]}


@pytest.mark.parametrize("text", [
    "{ at: Symbol(x) }", "{ a: 1 + 2 }", "{ a: 1, b: }", "{ a: 'unterminated }", "just text", "[ 1, 2 ]", "{ a: 1 } and more",
    "{ " + "a: 1, " * 20_000 + "b: 2 }",  # past the size read this way
])
def test_what_util_inspect_cannot_have_printed_is_no_record(text):
    assert js_object(text) is None


def test_a_node_line_that_is_no_record_is_a_malformed_json_dead_letter():
    summary, sink = meter("{ usage: { prompt_tokens: 12, completion_tokens: ")  # cut off
    assert summary.dead_letters == {"malformed_json": 1} and sink.events == []


def test_node_in_lambdas_json_log_format_puts_the_printed_object_in_message():
    # console.log("reply", message) with the function's log format set to JSON: util.format's text in "message".
    line = json.dumps({"timestamp": "2024-11-26T18:40:00.123Z", "level": "INFO",
                       "requestId": "8f1e2d3c-aaaa-bbbb-cccc-1234567890ab", "message": ANTHROPIC})
    config = parse_config({})
    sink = Collect()
    meter = Meter(config, TokenizerPool({}), sink)
    meter.add(log_line("cloudwatch:/aws/lambda/chat:stream:1", "cwl:1", line, 1732646400123))
    assert meter.finish().metered == 1
    assert billed(sink) == [("o'reilly-media", "cached_input", 100), ("o'reilly-media", "input", 25),
                            ("o'reilly-media", "output", 15)]
