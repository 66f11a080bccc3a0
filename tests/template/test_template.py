"""template.yaml: valid, buildable without Docker, and wired to the code it deploys."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from local.invoke import merge_layers

SAM = ROOT / ".venv-sam" / "bin" / "sam"
ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
# Local-only alternatives to the secret ARNs the template sets: a deployment keeps keys in Secrets Manager.
LOCAL_ONLY = {"LAGO_API_KEY", "HTTP_API_KEY"}


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values."""


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)))


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


def functions(template: dict) -> dict[str, dict]:
    return {name: r["Properties"] for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_sam_validate_lint_passes():
    result = subprocess.run([str(SAM), "validate", "--lint"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


ENV_READ = re.compile(r"""(?:environ\.get\(|env\.get\(|environ\[|env\[|_?number\(env,|_name\(env,|_positive\(env,)\s*["']([A-Z][A-Z0-9_]+)["']""")


def modules_reached(app: Path) -> set[Path]:
    """The handler and every tokenmeter module it imports, directly or through others."""
    seen, todo = set(), [app]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        inside = path.is_relative_to(ROOT / "src")
        package = list(path.relative_to(ROOT / "src").parent.parts) if inside else []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = (package[: len(package) - node.level + 1] if node.level else []) + (node.module or "").split(".")
                names = [".".join(p for p in base if p)] + [".".join([*base, a.name]) for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = [p for p in name.split(".") if p]
                if parts[:1] != ["tokenmeter"]:
                    continue
                for found in (ROOT / "src" / Path(*parts)).with_suffix(".py"), ROOT / "src" / Path(*parts) / "__init__.py":
                    if found.exists():
                        todo.append(found)
    return seen


def test_every_environment_variable_the_code_reads_is_set_by_the_template(template):
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    for name, function in functions(template).items():
        reached = modules_reached(ROOT / function["CodeUri"] / "app.py")
        read = set().union(*(set(ENV_READ.findall(path.read_text())) for path in reached))
        set_by_template = set(globals_env) | set(function.get("Environment", {}).get("Variables", {}))
        missing = read - set_by_template - LOCAL_ONLY
        assert not missing, f"{name} reads {sorted(missing)} but the template does not set them"


def test_handlers_and_layers_point_at_real_folders(template):
    for name, function in functions(template).items():
        module, _, handler = function["Handler"].partition(".")
        assert (ROOT / function["CodeUri"] / f"{module}.py").exists(), name
        assert handler == "lambda_handler"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            assert (ROOT / resource["Properties"]["ContentUri"]).is_dir(), name


@pytest.mark.slow
def test_sam_build_without_docker_and_every_built_handler_imports(sam_build, tmp_path, template):
    build = sam_build
    assert (build / "TokenizersLayer/python/tokenizers/llama3/tokenizer.json").exists()
    for name, function in functions(template).items():
        # As Lambda lays them out: the function at /var/task, its layers merged into /opt/python.
        opt = merge_layers([build / layer / "python" for layer in function["Layers"]], tmp_path / name)
        path = [str(build / name), str(opt)]
        code = f"import sys; sys.path[:0] = {path!r}; import app; assert callable(app.lambda_handler)"
        # -S: no site-packages, so every import must come from the built artifacts.
        check = subprocess.run([sys.executable, "-I", "-S", "-c", code], env=ENV, capture_output=True, text=True,
                               cwd=tmp_path)
        assert check.returncode == 0, f"{name}: {check.stderr[-2000:]}"


def test_encryption_and_what_callers_rely_on(template):
    resources = template["Resources"]
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::SQS::Queue":
            assert properties.get("SqsManagedSseEnabled") or properties.get("KmsMasterKeyId"), f"{name} unencrypted"
        if resource["Type"] == "AWS::S3::Bucket":
            assert properties["BucketEncryption"], name
            assert all(properties["PublicAccessBlockConfiguration"].values()), f"{name} can be made public"
        if resource["Type"] == "AWS::S3::BucketPolicy":
            for statement in properties["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Deny" or "*" not in str(statement.get("Principal")), name
    sqs_trigger = resources["PublishEventFunction"]["Properties"]["Events"]["Usage"]["Properties"]
    assert sqs_trigger["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    http_api = resources["UsageHttpApi"]["Properties"]["Auth"]
    assert http_api == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}


def test_reconciliation_runs_on_its_own_schedules_not_inside_lago_sync(template):
    resources, parameters = template["Resources"], template["Parameters"]
    reconcile, lago_sync = resources["ReconcileFunction"]["Properties"], resources["LagoSyncFunction"]["Properties"]
    assert reconcile["CodeUri"] == "functions/reconcile" and reconcile["Timeout"] == 900
    events = reconcile["Events"]
    assert events["Schedule"]["Properties"]["Schedule"] == "ReconcileSchedule"
    assert parameters["ReconcileSchedule"]["Default"] == "rate(15 minutes)"
    assert events["Sweep"]["Properties"]["Schedule"] == "SweepSchedule"
    assert json.loads(events["Sweep"]["Properties"]["Input"]) == {"sweep": True}
    assert not [v for v in lago_sync["Environment"]["Variables"] if v.startswith(("RECONCILE", "TOTALS"))]
    alarm = resources["ReconciliationDriftAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "reconcile"}]
