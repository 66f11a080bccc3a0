"""Every wheel `sam build` puts in a layer runs on Lambda's python3.13 runtime: CPython 3.13 on Amazon Linux
2023, whose glibc is 2.34, on x86_64 or arm64 (Graviton) as built. The compatible tags come from `packaging`
(pip's own rules), not from the build script, so a layer built for the wrong Python, a newer glibc or the
other processor is caught; every native library is also read as ELF, for the processor it was built for."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from packaging import tags

GLIBC = (2, 34)


# ELF e_machine of each of Lambda's architectures.
MACHINES = {"x86_64": 62, "aarch64": 183}


def runtime_tags(machine: str = "x86_64") -> set[tags.Tag]:
    platforms = [f"manylinux_{GLIBC[0]}_{minor}_{machine}" for minor in range(GLIBC[1], 4, -1)]
    platforms += [f"manylinux2014_{machine}", f"linux_{machine}"]
    if machine == "x86_64":
        platforms += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    found = set(tags.cpython_tags((3, 13), platforms=platforms))
    found |= set(tags.compatible_tags((3, 13), "cp313", platforms))
    return found


def wheel_tags(dist_info: Path) -> set[tags.Tag]:
    lines = (dist_info / "WHEEL").read_text().splitlines()
    return {tag for line in lines if line.startswith("Tag:") for tag in tags.parse_tag(line.split(":", 1)[1].strip())}


def incompatible(site: Path, allowed: set[tags.Tag]) -> list[str]:
    """The distributions under ``site`` none of whose tags the runtime takes."""
    return sorted(f"{d.name}: {sorted(map(str, wheel_tags(d)))}" for d in site.glob("*.dist-info")
                  if (d / "WHEEL").exists() and not wheel_tags(d) & allowed)


def test_the_template_asks_for_python3_13_everywhere():
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=yaml.BaseLoader)
    assert template["Globals"]["Function"]["Runtime"] == "python3.13"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            assert resource["Properties"]["CompatibleRuntimes"] == ["python3.13"], name
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"].get("Runtime", "python3.13") == "python3.13", name


def elf_machine(path: Path) -> int | None:
    head = path.read_bytes()[:20]
    return int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_every_layer_wheel_runs_on_the_runtime(request, machine):
    build = request.getfixturevalue("sam_build" if machine == "x86_64" else "sam_build_arm64")
    allowed = runtime_tags(machine)
    layers = [d for d in build.iterdir() if d.name.endswith("Layer") and (d / "python").is_dir()]
    assert {d.name for d in layers} >= {"CoreLayer", "NatsLayer", "MeteringLayer", "TokenizersLayer"}
    checked, native = 0, 0
    for layer in layers:
        assert incompatible(layer / "python", allowed) == [], layer.name
        checked += len(list((layer / "python").glob("*.dist-info")))
        for library in (p for p in (layer / "python").rglob("*.so*") if p.suffix == ".so" or ".so." in p.name):
            assert elf_machine(library) == MACHINES[machine], library
            native += 1
    assert checked > 20  # the layers really carry their dependencies
    assert native > 10  # orjson, PyYAML, tokenizers, numpy... are native


def test_an_arm64_build_can_be_deployed_only_as_arm64(sam_build_arm64, sam_build):
    """The built template takes only the architecture its layers were built for, and its functions use it."""
    for build, architecture in ((sam_build_arm64, "arm64"), (sam_build, "x86_64")):
        template = yaml.safe_load((build / "template.yaml").read_text())
        parameter = template["Parameters"]["Architecture"]
        assert (parameter["AllowedValues"], parameter["Default"]) == ([architecture], architecture)
        assert template["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
        layers = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::LayerVersion"]
        assert layers and all(r["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}] for r in layers)
    # The pinned template is still one SAM and cfn-lint accept.
    checked = subprocess.run([str(ROOT / ".venv-sam/bin/sam"), "validate", "--lint", "-t",
                              str(sam_build_arm64 / "template.yaml")], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("machine, tag", [
    ("x86_64", "cp311-cp311-manylinux_2_17_x86_64"), ("x86_64", "cp313-cp313-manylinux_2_39_x86_64"),
    ("x86_64", "cp313-cp313-manylinux_2_28_aarch64"), ("x86_64", "cp313-cp313-macosx_11_0_arm64"),
    ("aarch64", "cp313-cp313-manylinux_2_28_x86_64"), ("aarch64", "cp313-cp313-manylinux_2_39_aarch64"),
    ("aarch64", "cp313-cp313-musllinux_1_2_aarch64")])
def test_a_wheel_for_another_runtime_is_caught(tmp_path, machine, tag):
    for name, wheel_tag in (("good-1.0.dist-info", "py3-none-any"), ("bad-1.0.dist-info", tag)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "WHEEL").write_text(f"Wheel-Version: 1.0\nTag: {wheel_tag}\n")
    assert incompatible(tmp_path, runtime_tags(machine)) == [f"bad-1.0.dist-info: ['{tag}']"]


def test_abi3_and_manylinux2014_wheels_are_taken(tmp_path):
    for name, wheel_tag in (("a-1.dist-info", "cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64"),
                            ("b-1.dist-info", "cp313-cp313-manylinux_2_34_x86_64")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "WHEEL").write_text(f"Tag: {wheel_tag}\n")
    assert incompatible(tmp_path, runtime_tags()) == []
