"""Who pays: the Lago subscription a record is attributed to, by configured field paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Attributor:
    """Reads ``external_subscription_id`` from the first configured path that has a value."""

    def __init__(self, paths: Sequence[str], default: str | None):
        self._paths = [tuple(path.split(".")) for path in paths]
        self._default = default

    def subscription_for(self, record: Any) -> str | None:
        for path in self._paths:
            value = _lookup(record, path)
            if isinstance(value, str):
                value = value.strip()
                if value:
                    return value
            elif isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        return self._default


def _lookup(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
