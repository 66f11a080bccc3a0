"""Pin a built template to the architecture its layers were built for.

    python layers/pin_architecture.py .aws-sam/build/template.yaml arm64

The layers carry native wheels for one architecture, so `make build ARCH=...` leaves a built template
whose Architecture parameter takes only that value and defaults to it: `sam deploy` of x86_64 layers
with Architecture=arm64 (or the reverse) then fails at once with CloudFormation's AllowedValues error,
instead of deploying functions that cannot import their own dependencies.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def pin(template_path: Path, architecture: str) -> None:
    template = yaml.safe_load(template_path.read_text())  # sam build writes the long form: plain YAML
    parameter = template["Parameters"]["Architecture"]
    if architecture not in parameter["AllowedValues"]:
        raise SystemExit(f"Architecture must be one of {parameter['AllowedValues']}, not {architecture!r}")
    parameter["AllowedValues"], parameter["Default"] = [architecture], architecture
    parameter["Description"] = f"The layers of this build were built for {architecture} (make build ARCH=...)."
    template_path.write_text(yaml.safe_dump(template, sort_keys=False, width=120))


if __name__ == "__main__":
    pin(Path(sys.argv[1]), sys.argv[2])
