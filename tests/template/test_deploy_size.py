"""What `sam build` makes fits Lambda: every function with its layers under 200 MiB unzipped (Lambda's limit
is 250 MB) on either architecture, the build leaves out what the functions never import, and the layers
carry bytecode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local.invoke import load_template

LIMIT_MIB = 200


def mebibytes(folder: Path) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
    return total / 2**20


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_every_function_with_its_layers_fits(request, architecture):
    sam_build = request.getfixturevalue("sam_build" if architecture == "x86_64" else "sam_build_arm64")
    template = load_template(sam_build / "template.yaml")
    sizes = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        parts = [sam_build / properties["CodeUri"]] + [sam_build / layer["Ref"] for layer in properties.get("Layers", [])]
        sizes[name] = sum(mebibytes(part) for part in parts)
    assert len(sizes) == 5
    assert all(size < LIMIT_MIB for size in sizes.values()), sizes
    assert sizes["CountTokensFunction"] > 50  # the tokenizer stack is really there


def test_the_build_leaves_out_what_is_never_imported(sam_build):
    metering, core = sam_build / "MeteringLayer" / "python", sam_build / "CoreLayer" / "python"
    for gone in ("hf_xet", "pygments", "rich", "typer", "pydantic", "pydantic_core", "fsspec"):
        assert not (metering / gone).exists(), gone
    assert not list(metering.glob("pydantic*.dist-info")) and not list(metering.glob("hf_xet*.dist-info"))
    assert not (core / "botocore").exists() and not (core / "boto3").exists()  # the runtime's own
    assert not list(metering.glob("numpy/**/tests"))
    for kept in ("transformers", "tokenizers", "huggingface_hub", "numpy", "jinja2", "tokenmeter"):
        assert (metering / kept).is_dir(), kept


def test_the_layers_carry_bytecode_python_trusts_without_the_source_time(sam_build):
    """Lambda's /opt is read-only: a module without bytecode in the layer is compiled again on every cold
    start. PEP 552 flags 0b01 = hash-based and unchecked (a zip does not keep the source's time exactly)."""
    checked = 0
    for layer in ("CoreLayer", "NatsLayer", "ShippingLayer", "IngestionLayer", "MeteringLayer"):
        for source in (sam_build / layer / "python").rglob("*.py"):
            family = source.as_posix().partition("/transformers/models/")[2]
            if family.count("/") == 1 and not family.startswith("auto/") and \
                    not source.name.startswith(("tokenization", "configuration", "__init__")):
                continue  # a model family's modeling code: never imported to count tokens
            compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
            assert compiled.is_file(), source
            assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
            checked += 1
    assert checked > 1000
    llama = sam_build / "MeteringLayer/python/transformers/models/llama/__pycache__"
    assert (llama / "tokenization_llama.cpython-313.pyc").is_file()
    assert (llama / "configuration_llama.cpython-313.pyc").is_file()
    assert not list(llama.glob("modeling_*.pyc"))
