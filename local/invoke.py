"""Invoke a function from `sam build`'s output the way Lambda does, without Docker.

    python -m local.invoke <LogicalId> <event.json> [--env-vars env.json] [--build-dir .aws-sam/build] [--timeout S]

The real runtime client (awslambdaric, as in AWS's Python base images) runs the
built handler, its layers merged into one /opt/python as Lambda merges them, against a small Lambda
Runtime API server on loopback. The environment is the template's (Globals and
the function's, parameters at their defaults) plus overrides in sam's
``--env-vars`` format: {"<LogicalId>": {"VAR": "value"}, "Parameters": {...}}.
Prints the result, or the error, like `sam local invoke`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from local.processes import free_port

ROOT = Path(__file__).resolve().parent.parent

API = "/2018-06-01/runtime"


class _Tagged(yaml.SafeLoader):
    """CloudFormation short tags as their long form: !Ref X -> {"Ref": X}."""


def _tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Tagged.add_multi_constructor("!", _tag)


STACK_NAME = "tokenmeter-local"  # what ${AWS::StackName} stands for in a local invocation


def sam_build(build: Path, cached: bool = False, architecture: str = "x86_64") -> subprocess.CompletedProcess[str]:
    """`sam build` of template.yaml into ``build``, without Docker, as `make build ARCH=...` does. SAM builds
    python3.13 functions with the python3.13 it finds on PATH, and the layers' Makefiles run `python3`: both
    must be this virtualenv's. The layers' wheels follow TOKENMETER_ARCH; the built template is then pinned
    to that architecture (layers/pin_architecture.py)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [str(ROOT / ".venv-sam" / "bin" / "sam"), "build", *(["--cached"] if cached else []), "--build-dir",
               str(build), "--parameter-overrides", f"Architecture={architecture}"]
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": path, "TOKENMETER_ARCH": architecture}
    built = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if built.returncode == 0:
        pinned = subprocess.run([sys.executable, str(ROOT / "layers/pin_architecture.py"), str(build / "template.yaml"),
                                 architecture], capture_output=True, text=True)
        return pinned if pinned.returncode else built
    return built


def load_template(path: Path) -> dict[str, Any]:
    """A SAM template, short-form tags (!Ref, !Sub, ...) read as their long forms."""
    return yaml.load(path.read_text(), Loader=_Tagged)


def function_environment(template: dict[str, Any], logical_id: str, overrides: dict[str, Any]) -> dict[str, str]:
    """The function's variables as deployed with default parameters, then the overrides."""
    parameters = {"AWS::StackName": STACK_NAME, "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
    parameters.update({k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()})
    parameters.update({k: str(v) for k, v in overrides.get("Parameters", {}).items()})
    scope = _Scope(parameters, template.get("Conditions", {}))
    variables = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    variables.update(template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    resolved = {name: scope.resolve(value) for name, value in variables.items()}
    resolved.update({k: str(v) for k, v in overrides.get(logical_id, {}).items()})
    return resolved


class _Scope:
    """Ref, Fn::Sub, Fn::If and the conditions they name, over parameters; a resource (a queue URL...) exists
    only when deployed, and reads as empty."""

    def __init__(self, parameters: dict[str, str], conditions: dict[str, Any]):
        self.parameters, self.conditions = parameters, conditions

    def resolve(self, value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            return self.parameters.get(value["Ref"], "")
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: self.parameters.get(m.group(1), ""), value["Fn::Sub"])
        if isinstance(value, dict) and "Fn::If" in value:
            name, yes, no = value["Fn::If"]
            return self.resolve(yes if self.holds(self.conditions[name]) else no)
        if isinstance(value, dict):
            return ""
        return str(value)

    def holds(self, condition: Any) -> bool:
        (kind, args), = condition.items()
        if kind == "Fn::Equals":
            return self.resolve(args[0]) == self.resolve(args[1])
        if kind == "Fn::Not":
            return not self.holds(args[0])
        if kind == "Fn::And":
            return all(self.holds(a) for a in args)
        if kind == "Fn::Or":
            return any(self.holds(a) for a in args)
        if kind in ("Condition", "Fn::Condition"):
            return self.holds(self.conditions[args])
        raise ValueError(f"local invoke cannot evaluate the condition {condition!r}")


# What Lambda's python3.13 runtime has beside a function and its layers: its runtime client and the SDK.
RUNTIME_PACKAGES = {"awslambdaric", "runtime_client", "simplejson", "snapshot_restore_py", "boto3", "botocore",
                    "s3transfer", "jmespath", "dateutil", "six", "urllib3", "certifi"}


def runtime_site(folder: Path) -> Path:
    """A site folder holding only RUNTIME_PACKAGES (links into this virtualenv): a function run with it and no
    other site-packages finds only what Lambda would, so a package a layer leaves out fails here as there."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        if entry.name.split(".")[0] in RUNTIME_PACKAGES and not entry.name.endswith(".dist-info"):
            (folder / entry.name).symlink_to(entry)
    return folder


def merge_layers(layers: list[Path], opt: Path) -> Path:
    """The layers' python/ folders as Lambda unpacks them into /opt/python: one tree, a later layer's files
    over an earlier's. Directories present in one layer only are linked, not copied."""
    target = opt / "python"
    for layer in layers:
        _merge(layer, target)
    return target


def _merge(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        placed = target / entry.name
        if entry.is_dir() and placed.is_dir():
            if placed.is_symlink():  # an earlier layer's directory: made real so that both can meet in it
                earlier = placed.resolve()
                placed.unlink()
                _merge(earlier, placed)
            _merge(entry, placed)
            continue
        if placed.is_symlink() or placed.is_file():
            placed.unlink()
        elif placed.is_dir():
            shutil.rmtree(placed)
        placed.symlink_to(entry)


class RuntimeApi:
    """The Lambda Runtime API for one invocation: hands out the event, takes the result or error."""

    def __init__(self, event: bytes, function_arn: str, timeout: float):
        self.event, self.function_arn, self.timeout = event, function_arn, timeout
        self.request_id = str(uuid.uuid4())
        self.done = threading.Event()
        self.outcome: tuple[str, bytes] | None = None
        self.served = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != f"{API}/invocation/next" or api.served:
                    api.done.wait()  # one invocation only: the runtime waits until we stop it
                    return
                api.served = True
                deadline_ms = int((time.time() + api.timeout) * 1000)
                self.send_response(200)
                for name, value in (("Lambda-Runtime-Aws-Request-Id", api.request_id),
                                    ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                                    ("Lambda-Runtime-Invoked-Function-Arn", api.function_arn),
                                    ("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"),
                                    ("Content-Type", "application/json"), ("Content-Length", str(len(api.event)))):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = "error" if self.path.endswith("/error") else "response"
                api.outcome = (kind, body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.done.set()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.done.set()
        self.server.shutdown()
        self.server.server_close()


def invoke(build_dir: Path, logical_id: str, event: bytes, overrides: dict[str, Any], timeout: float | None = None
           ) -> tuple[str, Any, str]:
    """Run one invocation; returns ("response" | "error" | "timeout", decoded payload, the function's logs)."""
    template = load_template(build_dir / "template.yaml")
    resource = template["Resources"].get(logical_id)
    if resource is None or resource["Type"] != "AWS::Serverless::Function":
        raise SystemExit(f"{logical_id} is not a function in {build_dir / 'template.yaml'}")
    properties = {**template.get("Globals", {}).get("Function", {}), **resource["Properties"]}
    timeout = timeout or float(properties.get("Timeout", 3))
    task_root = build_dir / properties["CodeUri"]
    layers = [build_dir / layer["Ref"] / "python" for layer in properties.get("Layers", []) if isinstance(layer, dict)]
    with tempfile.TemporaryDirectory(prefix="tokenmeter-opt-") as opt:
        paths = [task_root, merge_layers(layers, Path(opt)), runtime_site(Path(opt) / "runtime")]
        return _run(template, logical_id, properties, paths, event, overrides, timeout)


def _run(template: dict[str, Any], logical_id: str, properties: dict[str, Any], paths: list[Path], event: bytes,
         overrides: dict[str, Any], timeout: float) -> tuple[str, Any, str]:
    task_root, opt_python = paths[0], paths[1]
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}"
    api = RuntimeApi(event, arn, timeout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LAMBDA_", "_HANDLER"))}
    env.update({k: v.replace("/opt/python/", f"{opt_python}/")
                for k, v in function_environment(template, logical_id, overrides).items()})
    env.update({"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}", "LAMBDA_TASK_ROOT": str(task_root),
                "_HANDLER": properties["Handler"], "AWS_LAMBDA_FUNCTION_NAME": logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", 128)),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
                "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
                "PYTHONPATH": os.pathsep.join(str(p) for p in paths)})
    # -S: no site-packages of this virtualenv, only the function, its layers and the runtime's own packages.
    process = subprocess.Popen([sys.executable, "-S", "-m", "awslambdaric", properties["Handler"]], cwd=task_root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        finished = api.done.wait(timeout)
    finally:
        api.close()
        process.kill()
        logs = process.communicate()[0].decode(errors="replace")
    if not finished or api.outcome is None:
        return "timeout", f"Task timed out after {timeout:.2f} seconds", logs
    kind, body = api.outcome
    return kind, json.loads(body) if body else None, logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description=__doc__.splitlines()[0])
    parser.add_argument("function", help="the function's logical id in template.yaml, e.g. CountTokensFunction")
    parser.add_argument("event", type=Path, help="a JSON event file (see events/)")
    parser.add_argument("--env-vars", type=Path, help="overrides in sam's --env-vars JSON format")
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--timeout", type=float, help="seconds; default the template's Timeout")
    args = parser.parse_args(argv)
    if not (args.build_dir / "template.yaml").exists():
        parser.error(f"{args.build_dir}/template.yaml not found: run `make build` (sam build) first")
    overrides = json.loads(args.env_vars.read_text()) if args.env_vars else {}
    kind, payload, logs = invoke(args.build_dir, args.function, args.event.read_bytes(), overrides, args.timeout)
    sys.stderr.write(logs)
    print(json.dumps(payload, indent=2) if kind == "response" else json.dumps({"invocation": kind, "error": payload}))
    return 0 if kind == "response" else 1


if __name__ == "__main__":
    sys.exit(main())
