"""One installable package: each function imports only the parts its layers carry, no part reaches into
another function's part, nothing outside the tests edits sys.path, and `pip install .` gives a working
command."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, publish_to_ledger, usage_event

PACKAGE = ROOT / "src/tokenmeter"
LAYER_PARTS = {"CoreLayer": "core", "NatsLayer": "nats", "MeteringLayer": "metering", "IngestionLayer": "ingestion",
               "ShippingLayer": "shipping"}
# What each part may import of the package: the core everywhere, NATS where events meet the ledger.
ALLOWED = {"core": {"core"}, "nats": {"core", "nats"}, "metering": {"core", "metering"},
           "ingestion": {"core", "nats", "ingestion"}, "shipping": {"core", "nats", "shipping"}}


def tokenmeter_parts(path: Path) -> set[str]:
    """The parts of the package a module imports (``tokenmeter.<part>``), relative imports resolved."""
    inside = path.is_relative_to(ROOT / "src")
    module = path.relative_to(ROOT / "src").with_suffix("").parts if inside else ()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from ..core import x, from . import y
                base = list(module[: len(module) - node.level])
                names = [".".join(base + ([node.module] if node.module else []))]
            elif node.module:
                names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "tokenmeter" and len(parts) > 1:
                found.add(parts[1])
    return found


def template() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: (
        loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)))
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


def test_each_function_imports_only_the_parts_its_layers_carry():
    for name, resource in template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        carried = {LAYER_PARTS[layer] for layer in resource["Properties"]["Layers"] if layer in LAYER_PARTS}
        imported = tokenmeter_parts(ROOT / resource["Properties"]["CodeUri"] / "app.py")
        assert imported <= carried, f"{name} imports tokenmeter.{sorted(imported - carried)} that its layers lack"
        # ... and its layers carry what those parts import in turn.
        needed = set().union(*(ALLOWED[part] for part in imported))
        assert needed <= carried, f"{name} needs tokenmeter.{sorted(needed - carried)}"


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_no_part_reaches_into_another_functions_part(part):
    for path in (PACKAGE / part).rglob("*.py"):
        imported = tokenmeter_parts(path)
        assert imported <= ALLOWED[part], f"{path.relative_to(ROOT)} imports tokenmeter.{sorted(imported - ALLOWED[part])}"


def test_a_cross_function_import_would_be_caught(tmp_path):
    """The check above is not vacuous: a shipping module importing metering is found."""
    fake = ROOT / "src/tokenmeter/shipping/_probe_for_test.py"
    fake.write_text("from tokenmeter.metering.records import RawRecord\nfrom ..ingestion import validation\n")
    try:
        assert tokenmeter_parts(fake) == {"metering", "ingestion"}
    finally:
        fake.unlink()


def test_nothing_outside_the_tests_edits_sys_path():
    for folder in ("src", "functions", "layers", "local", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "sys.path" not in path.read_text(), path.relative_to(ROOT)


@pytest.mark.slow
def test_pip_install_gives_a_working_command(tmp_path, nats_server, lago):
    """The wheel of `pip install .`, in a fresh virtualenv: `tokenmeter --help`, `python -m tokenmeter status`."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("tokenmeter-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                str(wheel), "-c", str(ROOT / "constraints.txt")], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "NATS_URL": nats_server.url, "LAGO_API_URL": lago.url,
           "LAGO_API_KEY": lago.api_key, "NATS_STREAM_MAX_AGE_DAYS": os.environ["NATS_STREAM_MAX_AGE_DAYS"]}
    helped = subprocess.run([str(venv / "bin/tokenmeter"), "--help"], env=env, capture_output=True, text=True, cwd="/")
    assert helped.returncode == 0 and "status" in helped.stdout, helped.stderr
    publish_to_ledger(nats_server.url, [usage_event(1)])  # the USAGE stream and lago-sync consumer exist
    status = subprocess.run([str(venv / "bin/python"), "-m", "tokenmeter", "status", "--json"], env=env,
                            capture_output=True, text=True, cwd="/")
    assert status.returncode == 0, status.stderr[-3000:]
    found = json.loads(status.stdout)
    assert found["stream"]["messages"] == 1 and found["consumer"]["pending"] == 1
    assert "site-packages/tokenmeter" in subprocess.run(
        [str(venv / "bin/python"), "-c", "import tokenmeter; print(tokenmeter.__file__)"],
        capture_output=True, text=True, cwd="/").stdout  # the installed copy, not this checkout
