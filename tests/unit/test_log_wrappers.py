"""JSON log lines around a record: Lambda's JSON log format (its platform events, the Python runtime's
`logging` lines) and Powertools' Logger. Lines follow the shapes Lambda and Powertools document; counts and
subscriptions are worked out by hand."""

import json

from conftest import meter_lines

from tokenmeter.core import record_key

REQUEST = "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"
OPENAI = {"id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", "object": "chat.completion", "created": 1732646401,
          "model": "gpt-4o", "user": "sub_9", "usage": {"prompt_tokens": 30, "completion_tokens": 12}}


def meter(*lines):
    return meter_lines(list(lines), {"subscription_from": ["user", "customer_id"]})


def billed(sink):
    return sorted((e.external_subscription_id, e.properties["model"], e.properties["token_type"],
                   e.properties["tokens"], e.timestamp) for e in sink.events)


def test_lambda_platform_events_in_json_format_are_platform_lines():
    start = {"time": "2024-11-26T18:40:00.000Z", "type": "platform.start",
             "record": {"requestId": REQUEST, "version": "$LATEST"}}
    report = {"time": "2024-11-26T18:40:00.500Z", "type": "platform.report",
              "record": {"requestId": REQUEST, "status": "success",
                         "metrics": {"durationMs": 2.0, "billedDurationMs": 3, "memorySizeMB": 128,
                                     "maxMemoryUsedMB": 60}}}
    summary, sink = meter(start, report)
    assert sink.events == [] and summary.dead_letters == {} and summary.skipped == {"platform_line": 2}


def test_a_response_logged_as_json_text_in_a_lambda_json_log_line_is_billed():
    line = {"timestamp": "2024-11-26T18:40:00.123Z", "level": "INFO", "message": json.dumps(OPENAI), "logger": "root",
            "requestId": REQUEST}
    summary, sink = meter(line)
    assert summary.metered == 1
    assert billed(sink) == [("sub_9", "gpt-4o", "input", 30, "1732646401.000"),
                            ("sub_9", "gpt-4o", "output", 12, "1732646401.000")]
    # The same ids as the response logged bare: one inference, whichever way it was logged.
    assert {e.transaction_id for e in sink.events} == {
        f"{record_key('req:chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012|gpt-4o')}-{kind}" for kind in ("input", "output")}


def test_a_powertools_line_is_attributed_by_the_keys_the_app_appends():
    message = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "model": "claude-sonnet-4-5",
               "usage": {"input_tokens": 11, "output_tokens": 5}}
    line = {"level": "INFO", "location": "handler:12", "message": message, "service": "chat", "customer_id": "sub_7",
            # Powertools' default time, not RFC 3339: the line's, never taken for the inference's.
            "timestamp": "2024-11-26 18:40:00,123+0000"}
    summary, sink = meter(line)
    assert summary.metered == 1
    assert billed(sink) == [("sub_7", "claude-sonnet-4-5", "input", 11, "1732646500.000"),
                            ("sub_7", "claude-sonnet-4-5", "output", 5, "1732646500.000")]


def test_the_record_own_keys_come_before_the_line_keys():
    line = {"level": "INFO", "message": {**OPENAI, "user": "sub_in_record"}, "user": "sub_on_line"}
    _, sink = meter(line)
    assert {e.external_subscription_id for e in sink.events} == {"sub_in_record"}


def test_a_log_line_that_holds_no_record_is_still_a_dead_letter():
    lines = [{"level": "INFO", "message": "calling model", "timestamp": "2024-11-26 18:40:00,123+0000"},
             {"level": "INFO", "message": "{not json"},
             {"level": "INFO", "message": {"step": "retrieval"}}]
    summary, sink = meter(*lines)
    assert sink.events == [] and summary.dead_letters == {"unknown_format": 3}
    assert [letter.record for letter in sink.dead_letters] == [json.dumps(line) for line in lines]  # whole lines


def test_a_dict_logged_as_python_prints_it_in_a_lambda_json_log_line_is_billed():
    # logging.info("response: %s", response_dict) with the function's log format set to JSON.
    line = {"timestamp": "2024-11-26T18:40:00.123Z", "level": "INFO", "message": f"response: {OPENAI}",
            "logger": "root", "requestId": REQUEST}
    summary, sink = meter(line)
    # 30 prompt and 12 completion tokens, at the response's own time (created 1732646401).
    assert billed(sink) == [("sub_9", "gpt-4o", "input", 30, "1732646401.000"),
                            ("sub_9", "gpt-4o", "output", 12, "1732646401.000")]


ANTHROPIC = {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
             "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
             "usage": {"input_tokens": 20, "output_tokens": 5, "cache_read_input_tokens": 100,
                       "cache_creation_input_tokens": 0}}


def test_a_llama_index_response_bills_the_providers_answer_it_holds():
    # ChatResponse.model_dump(): the message LlamaIndex made, the provider's answer in `raw`; the app appends
    # its customer. CompletionResponse: `text` where the chat response has `message`.
    chat = {"message": {"role": "assistant", "additional_kwargs": {}, "blocks": [{"block_type": "text", "text": "Hi"}]},
            "raw": {**OPENAI, "user": None}, "delta": None, "logprobs": None,
            "additional_kwargs": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
            "customer_id": "sub_4"}
    completion = {"text": "Hi", "additional_kwargs": {}, "raw": ANTHROPIC, "logprobs": None, "delta": None,
                  "customer_id": "sub_5"}
    summary, sink = meter(chat, completion)
    assert billed(sink) == [("sub_4", "gpt-4o", "input", 30, "1732646401.000"),
                            ("sub_4", "gpt-4o", "output", 12, "1732646401.000"),
                            ("sub_5", "claude-sonnet-4-5", "cached_input", 100, "1732646500.000"),
                            ("sub_5", "claude-sonnet-4-5", "input", 20, "1732646500.000"),
                            ("sub_5", "claude-sonnet-4-5", "output", 5, "1732646500.000")]
    # The same answer logged bare as well bills once: the provider's id is the identity either way.
    again, sink_again = meter({**OPENAI, "user": "sub_4"}, chat)
    assert len({e.transaction_id for e in sink_again.events}) == 2 and again.metered == 2
