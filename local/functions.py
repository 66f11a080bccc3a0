"""Load a function's handler module as Lambda would run it (every handler is app.py, so each gets a unique name)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load_function_app(function: str) -> ModuleType:
    """functions/<function>/app.py under the module name ``<function>_app``; it imports only the tokenmeter package."""
    name = f"{function}_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
