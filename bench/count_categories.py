"""count_tokens on bench/pipeline_bench.py's workload, one category of records at a time, each beside a
`json.loads` loop over the same lines: where the function's time goes, and which records are far from the
baseline.

    .venv/bin/python -m bench.count_categories [--records N]

A category is a kind of CloudWatch line (Bedrock, OpenAI chat, streamed chunks), each batch of the workload
cut down to that kind, or the S3 objects of one folder of the workload (one format each), delivered as the
template delivers them (SQS batches of its InferenceLogObjectBatchSize). Each is timed as
the pipeline benchmark times count_tokens: the handler invoked per trigger, SQS and S3 in-memory stand-ins,
the best of three rounds for both sides, taken in turns. Per trigger, the handler and the reading of the
trigger cost the same whatever it holds, so categories of small objects show that fixed cost.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from bench.baselines import json_loads_loop, object_lines, timed
from bench.lambda_context import handler_environment, object_triggers
from bench.pipeline_bench import count_stage
from local.workload import cloudwatch_event, generate

ROUNDS = 3


def categories(work) -> dict[str, tuple[list[dict], list[str]]]:
    """Category -> (its triggers, the JSON of its lines)."""
    found: dict[str, tuple[list[dict], list[str]]] = defaultdict(lambda: ([], []))
    for batch in work.cloudwatch:
        kinds: dict[str, list] = defaultdict(list)
        for log_event in batch:
            kinds[_line_kind(log_event[2])].append(log_event)
        for kind, log_events in kinds.items():
            found[kind][0].append(cloudwatch_event(log_events))
            found[kind][1].extend(message[message.find("{"):] for _, _, message in log_events)
    folders: dict[str, list[str]] = defaultdict(list)
    for key, body in work.s3_objects.items():
        folder = key.split("/")[1] if key.startswith("gateway/") else key.split("/")[0]
        folders[f"S3 {folder}"].append(key)
        found[f"S3 {folder}"][1].extend(object_lines(body))
    for name, keys in folders.items():
        found[name][0].extend(object_triggers(keys))  # as the template delivers them: batches through SQS
    return dict(found)


def _line_kind(message: str) -> str:
    if '"chat.completion.chunk"' in message:
        return "CloudWatch streamed chunks"
    if '"ModelInvocationLog"' in message:
        return "CloudWatch Bedrock"
    return "CloudWatch OpenAI chat"


def main() -> None:
    handler_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    work = generate(parser.parse_args().records, len, len, text_share=0, bad_every=0, ghost_every=0)
    print(f"{'category':28} {'lines':>6} {'triggers':>8} {'count_tokens ms':>15} {'json.loads ms':>13} {'ratio':>6} "
          f"{'us per line':>11}")
    total_count = total_parse = 0.0
    for name, (triggers, lines) in sorted(categories(work).items()):
        parses, counts = [], []
        for _ in range(ROUNDS):
            parses.append(timed(lambda lines=lines: json_loads_loop(lines)))
            counts.append(count_stage(work, triggers)[0].wall)
        parse, count = min(parses), min(counts)
        total_count, total_parse = total_count + count, total_parse + parse
        print(f"{name:28} {len(lines):6,} {len(triggers):8,} {count * 1e3:15.1f} {parse * 1e3:13.1f} "
              f"{parse / count:5.2f}x {count / len(lines) * 1e6:11.1f}")
    print(f"{'all, category by category':28} {'':6} {'':8} {total_count * 1e3:15.1f} {total_parse * 1e3:13.1f} "
          f"{total_parse / total_count:5.2f}x")


if __name__ == "__main__":
    main()
