"""Load a function's handler module the way Lambda does: its folder on the path, its layers beside it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [ROOT / "layers/core", ROOT / "layers/nats"]


def load_function_app(function: str) -> ModuleType:
    """functions/<function>/app.py under the unique module name ``<function>_app`` (every handler is app.py)."""
    for folder in [*LAYERS, ROOT / "functions" / function]:
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    name = f"{function}_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
