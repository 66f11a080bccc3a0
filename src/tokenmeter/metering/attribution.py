"""Who pays: the Lago subscription a record is attributed to, by configured field paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Attributor:
    """Reads ``external_subscription_id`` from the first configured path that has a value (a dotted path: a
    key that holds dots is matched whole, as in OpenTelemetry attributes)."""

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
    i = 0
    while i < len(path):
        part = path[i]
        if isinstance(value, dict):
            if part in value:
                value = value[part]
                i += 1
                continue
            # Keys may hold dots themselves (OpenTelemetry's "user.id"): "attributes.user.id" reads them too.
            for end in range(len(path), i + 1, -1):
                key = ".".join(path[i:end])
                if key in value:
                    value, i = value[key], end
                    break
            else:
                return None
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
            i += 1
        else:
            return None
    return value
