"""`make demo` end to end: the invoices it prints, worked out by hand from its sample logs and prices."""

import subprocess
import sys

from conftest import ROOT


def test_demo_prints_each_customers_invoice():
    out = subprocess.run([sys.executable, "-m", "local.demo"], cwd=ROOT, capture_output=True, text=True, timeout=400,
                         check=True).stdout
    acme = out.split("acme (sub_acme)")[1].split("\n\n")[0]
    # Haiku input 110k+130k+150k at $0.80/M = $0.312; cache reads 150k at $0.08/M = $0.012;
    # output 20,001+20,003+20,005 at $4/M = $0.240: 31 + 1 + 24 cents.
    assert "input            390,000 tokens  $    0.31" in acme
    assert "output            60,009 tokens  $    0.24" in acme
    assert "invoice total" in acme and "$    0.56 USD" in acme
    initech = out.split("initech (sub_initech)")[1].split("\n\n")[0]
    # gpt-4o: prompt 200,600 - cached 192,000 = 8,600 input; completion 30,000 - reasoning 6,400 = 23,600 output.
    assert "input              8,600 tokens" in initech and "output            23,600 tokens" in initech
    globex = out.split("globex (sub_globex)")[1].split("\n\n")[0]
    mini = {line.split()[1]: line.split()[2] for line in globex.splitlines() if "gpt-4o-mini-2024-07-18" in line}
    # The OpenTelemetry trace: 120,000 - 40,000 cached + 30,000 (older names); the agent's sum is not billed.
    # LiteLLM: 50,000 - 10,000 cached. Output 8,000 + 5,000 + 7,000; the failed LiteLLM call bills nothing.
    assert mini == {"input": "150,000", "cached_input": "50,000", "output": "20,000"}
    # Bedrock 6 records x 3 types + gpt-4o 1 x 4 + Ollama 3 x 2 + Llama 3.2 text 1 x 2 + the trace's two model
    # calls 3 + 2 + LiteLLM 3; the second CloudWatch delivery adds nothing.
    assert "lago_sync: shipped 38, already billed 0" in out
    assert "reconcile: 38 ledger events counted, 3 subscriptions checked, drift []" in out
    assert "'aggregate_span': 1, 'failed_call': 1" in out
    assert "Dead letters" in out and "no_tokenizer" in out
