"""Who pays: the Lago subscription a record is attributed to, by configured field paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Attributor:
    """Reads ``external_subscription_id`` from the first configured path that has a value."""

    def __init__(self, paths: Sequence[str], default: str | None):
        self._paths = [_Path(path) for path in paths]
        self._default = default

    def subscription_for(self, record: Any) -> str | None:
        for path in self._paths:
            value = path.lookup(record)
            if isinstance(value, str):
                value = value.strip()
                if value:
                    return value
            elif isinstance(value, int) and not isinstance(value, bool):
                return str(value)
        return self._default


class _Path:
    """A dotted path, with the longer keys it may also stand for worked out once: a key may hold dots itself
    (OpenTelemetry's "user.id"), so "attributes.user.id" also reads ``attributes["user.id"]``."""

    def __init__(self, path: str):
        self.parts = tuple(path.split("."))
        self.joined = [[(".".join(self.parts[i:end]), end) for end in range(len(self.parts), i + 1, -1)]
                       for i in range(len(self.parts))]

    def lookup(self, value: Any) -> Any:
        parts, i = self.parts, 0
        while i < len(parts):
            part = parts[i]
            if isinstance(value, dict):
                if part in value:
                    value = value[part]
                    i += 1
                    continue
                for key, end in self.joined[i]:
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
