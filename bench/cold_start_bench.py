"""Cold start: each built function's handler import, beside the bare import of the libraries it loads.

    .venv/bin/python -m bench.cold_start_bench [--runs 11] [--no-build]

What Lambda imports on a cold start is the built function with its layers, not this virtualenv: the
benchmark runs `sam build` (x86_64, into .aws-sam/bench-build), lays each function's layers out as one /opt/python and imports the
handler with `python -S` beside only the runtime's own packages (local/invoke.py's layout), in a fresh
interpreter each run, from the function's folder. The baseline, in the same layout and run: a fresh
interpreter importing every third-party module the handler's import loaded (the same modules, in the same
order), so the difference is tokenmeter's own code and what it does at import. Medians of --runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from local.invoke import function_environment, load_template, merge_layers, runtime_site, sam_build

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "bench-build"  # beside, not over, what `make build` made for deploying
# (function, issue 17's target in ms); publish_http and reconcile have none, shown for the record.
FUNCTIONS = (("CountTokensFunction", 100), ("PublishEventFunction", 150), ("LagoSyncFunction", 150),
             ("PublishHttpFunction", None), ("ReconcileFunction", None))

# Run in the child: time `import app`, then name the third-party modules it loaded (not stdlib, not ours).
HANDLER = """
import json, os, sys, time
before = set(sys.modules)
t = time.perf_counter()
import app
took = time.perf_counter() - t
roots = tuple(p for p in os.environ['PYTHONPATH'].split(os.pathsep)[1:] if p)
loaded = [m for m in sys.modules if m not in before and m.split('.')[0] not in sys.stdlib_module_names
          and m.split('.')[0] not in ('tokenmeter', 'app')
          and (getattr(sys.modules[m], '__file__', None) or '').startswith(roots)]
print(json.dumps({"seconds": took, "modules": loaded}))
"""
LIBRARIES = """
import importlib, sys, time
names = sys.argv[1:]
t = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(time.perf_counter() - t)
"""


def layout(build: Path, logical_id: str, opt: Path) -> tuple[Path, dict[str, str]]:
    """The function's folder and the environment its handler imports in, as local/invoke.py runs it."""
    template = load_template(build / "template.yaml")
    properties = template["Resources"][logical_id]["Properties"]
    task_root = build / properties["CodeUri"]
    layers = [build / layer["Ref"] / "python" for layer in properties.get("Layers", []) if isinstance(layer, dict)]
    paths = [task_root, merge_layers(layers, opt), runtime_site(opt / "runtime")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "POWERTOOLS"))}
    env.update(function_environment(template, logical_id, {}))
    env.update({"PYTHONPATH": os.pathsep.join(map(str, paths)), "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_LAMBDA_FUNCTION_NAME": logical_id, "PYTHONDONTWRITEBYTECODE": "1"})
    return task_root, env


def measure(task_root: Path, env: dict[str, str], runs: int) -> tuple[float, float, int]:
    """(handler ms, libraries ms, modules loaded): medians of ``runs`` fresh interpreters each, interleaved
    so that a busy moment of the machine weighs on both alike."""
    ours, bare, modules = [], [], []
    for _ in range(runs):
        child = subprocess.run([sys.executable, "-S", "-c", HANDLER], cwd=task_root, env=env, capture_output=True,
                               text=True)
        if child.returncode:
            raise SystemExit(f"the handler in {task_root} failed to import:\n{child.stderr[-2000:]}")
        found = json.loads(child.stdout)
        ours.append(found["seconds"])
        modules = found["modules"]
        bare.append(float(subprocess.run([sys.executable, "-S", "-c", LIBRARIES, *modules], cwd=task_root, env=env,
                                         capture_output=True, text=True, check=True).stdout))
    return statistics.median(ours) * 1000, statistics.median(bare) * 1000, len(modules)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--no-build", action="store_true", help="measure .aws-sam/bench-build as it is")
    args = parser.parse_args()
    if not args.no_build:
        built = sam_build(BUILD)
        if built.returncode:
            raise SystemExit(f"sam build failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
    print(f"handler import of the built functions, median of {args.runs} fresh interpreters (python -S, layers "
          "as /opt/python)")
    print(f"{'function':24} {'handler ms':>11} {'libraries ms':>13} {'ours ms':>8} {'ratio':>6} {'modules':>8}  target")
    for logical_id, target in FUNCTIONS:
        with tempfile.TemporaryDirectory(prefix="tokenmeter-opt-") as opt:
            handler, libraries, modules = measure(*layout(BUILD, logical_id, Path(opt)), args.runs)
        verdict = "" if target is None else f"<= {target} ms: {'met' if handler <= target else 'NOT met'}"
        print(f"{logical_id:24} {handler:11.1f} {libraries:13.1f} {handler - libraries:8.1f} "
              f"{handler / libraries:6.2f} {modules:8d}  {verdict}")
    print("libraries: the same third-party modules imported bare, in a fresh interpreter; ours: the difference.")


if __name__ == "__main__":
    main()
