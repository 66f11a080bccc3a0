"""Build one Lambda layer from the tokenmeter package: a part of it, and that part's pinned dependencies.

    python layers/build_layer.py <part> <requirements.txt> <artifacts dir>

Run by each layer's Makefile (`sam build`, no Docker) from the repository root. The part's modules are
copied from src/tokenmeter into python/tokenmeter/<part> (the core layer also takes the package's
__init__); Lambda unpacks every layer of a function into one /opt/python, where the parts meet as one
package. Dependencies are installed as wheels for Lambda's platform, at the versions of constraints.txt.
Then everything is compiled to bytecode Python trusts without looking at the source (below).
"""

from __future__ import annotations

import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The functions' architecture: `make build ARCH=arm64` sets it here and as the template's Architecture.
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's name -> the wheel tags' name


def platform(architecture: str) -> list[str]:
    """pip's options for Lambda's python3.13 runtime (Amazon Linux 2023, glibc 2.34): wheels built for that
    glibc or older, on the architecture's machine."""
    if architecture not in ARCHITECTURES:
        raise SystemExit(f"TOKENMETER_ARCH must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}")
    machine = ARCHITECTURES[architecture]
    tags = [f"manylinux_2_34_{machine}", f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]
    return [*(option for tag in tags for option in ("--platform", tag)), "--implementation", "cp",
            "--python-version", "3.13", "--only-binary=:all:"]


def build(part: str, requirements: Path, artifacts: Path) -> None:
    target = artifacts / "python"
    package = target / "tokenmeter"
    package.mkdir(parents=True, exist_ok=True)
    if part == "core":
        shutil.copy2(ROOT / "src/tokenmeter/__init__.py", package / "__init__.py")
    shutil.copytree(ROOT / "src/tokenmeter" / part, package / part, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if any(line.strip() and not line.lstrip().startswith("#") for line in requirements.read_text().splitlines()):
        install(requirements, target)
    compile_bytecode(target)


def install(requirements: Path, target: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    constraints = ["-c", str(ROOT / "constraints.txt")]
    with tempfile.TemporaryDirectory() as wheelhouse:
        # Some pure-Python packages ship only an sdist (nats-py, nkeys): built into wheels here first, since an
        # install for another platform takes wheels only.
        subprocess.run([*pip, "wheel", "--wheel-dir", wheelhouse, "-r", str(requirements), *constraints],
                       check=True)
        architecture = os.environ.get("TOKENMETER_ARCH", "x86_64")
        subprocess.run([*pip, "install", "--no-compile", "--target", str(target), *platform(architecture), "--find-links", wheelhouse,
                        "-r", str(requirements), *constraints], check=True)
    leave_out(target, requirements.parent / "leave-out.txt")


# Transformers' per-model packages: of a family only its tokenizer and configuration modules are ever imported
# (when its tokenizer is first loaded); compiling its modeling code would add ~50 MB to the metering layer.
_NOT_COMPILED = re.compile(r"/transformers/models/(?!auto/)[^/]+/(?!tokenization|configuration|__init__)[^/]+\.py$")


def compile_bytecode(target: Path) -> None:
    """Compile the layer's modules ahead: Lambda's /opt is read-only, so without bytecode in the layer every
    cold start compiles each module it imports from source (bench/cold_start_bench.py measured it).
    ``unchecked-hash`` bytecode is used without comparing the source's time stamp, which a zip (two-second
    resolution) does not keep exactly."""
    compiled = compileall.compile_dir(target, quiet=2, workers=0, rx=_NOT_COMPILED,
                                      invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not compiled:
        raise SystemExit(f"compiling {target} to bytecode failed")


def leave_out(target: Path, listing: Path) -> None:
    """Remove what the functions never import (Lambda's 250 MB limit counts it): the packages ``listing``
    names, with their metadata, and every package's own tests."""
    names = set()
    if listing.exists():
        names = {line.split("#")[0].strip() for line in listing.read_text().splitlines()} - {""}
    for entry in list(target.iterdir()):
        if entry.name.endswith(".dist-info"):
            record = entry / "RECORD"
            tops = {line.split("/")[0].split(",")[0] for line in record.read_text().splitlines()} if record.exists() else set()
            owned = {top for top in tops if not top.endswith(".dist-info") and not top.startswith("..")}
            if owned and {top.split(".")[0] for top in owned} <= names:
                shutil.rmtree(entry)
        elif entry.name.split(".")[0] in names:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for tests in sorted(target.glob("*/**/tests"), reverse=True):
        if tests.is_dir() and not tests.is_relative_to(target / "tokenmeter"):
            shutil.rmtree(tests)


if __name__ == "__main__":
    build(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
