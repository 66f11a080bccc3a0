"""Who pays: the Lago subscription a record is attributed to, by configured field paths."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from tokenmeter.core.config import PathPattern


class Attributor:
    """Reads ``external_subscription_id`` from the first configured path that has a value (for a path with a
    pattern, a value the pattern finds its part in)."""

    def __init__(self, paths: Sequence[str | PathPattern], default: str | None):
        self._paths = [_path(path) if isinstance(path, str) else _pattern_path(path) for path in paths]
        self._default = default

    def subscription_for(self, record: Any, origin: dict[str, Any] | None = None) -> str | None:
        """``origin``: where the record was logged (origins.py), which "@" paths read beside its own fields."""
        if origin is not None and type(record) is dict:
            record = {**origin, **record}
        for path in self._paths:
            if type(record) is dict:
                # Every record is tried on each path, and most paths miss at the first key: that miss is told
                # without the walk (it runs once per record in count_tokens).
                value = record.get(path.first, _MISSING)
                if value is _MISSING:
                    for key in path.alternatives:
                        if key in record:
                            value = path.lookup(record)
                            break
                    else:
                        continue
                elif path.second is not None and type(value) is dict:
                    value = value.get(path.second)  # a two-key path's last key: nothing longer to try
                elif path.longer:
                    value = path.lookup(record)
            else:
                value = path.lookup(record)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str):
                value = (value if path.pattern is None else path.part_of(value)).strip()
                if value:
                    return value
        return self._default


_MISSING: Any = object()


@functools.lru_cache(maxsize=256)
def _path(path: str) -> _Path:
    """A path worked out once per Lambda environment, not once per invocation's attributor."""
    return _Path(path)


class _Path:
    """A dotted path, with the longer keys it may also stand for worked out once: a key may hold dots itself
    (OpenTelemetry's "user.id"), so "attributes.user.id" also reads ``attributes["user.id"]``."""

    pattern: re.Pattern[str] | None = None

    def __init__(self, path: str):
        self.parts = tuple(path.split("."))
        self.joined = [[(".".join(self.parts[i:end]), end) for end in range(len(self.parts), i + 1, -1)]
                       for i in range(len(self.parts))]
        self.first, self.longer = self.parts[0], len(self.parts) > 1
        self.second = self.parts[1] if len(self.parts) == 2 else None
        self.alternatives = tuple(key for key, _ in self.joined[0])  # top-level keys that may stand for more

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
            elif isinstance(value, list) and part.isascii() and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
                i += 1
            else:
                return None
        return value


@functools.lru_cache(maxsize=256)
def _pattern_path(rule: PathPattern) -> _PatternPath:
    return _PatternPath(rule)


class _PatternPath(_Path):
    """A path whose value holds the subscription inside it (a batch request's custom_id "sub_42:row-7")."""

    def __init__(self, rule: PathPattern):
        super().__init__(rule.path)
        self.pattern = re.compile(rule.pattern)

    def part_of(self, value: str) -> str:
        """The pattern's group, or its whole match; "" (no subscription here) where it finds none."""
        found = self.pattern.search(value)
        if found is None:
            return ""
        return (found.group(1) if self.pattern.groups else found.group()) or ""
