"""Reading numeric settings from the environment, with errors that name the variable."""

from __future__ import annotations

from collections.abc import Mapping


def env_number(env: Mapping[str, str], key: str, default: float, low: float, high: float,
               error: type[Exception] = ValueError) -> float:
    """``env[key]`` as a number within [low, high]; ``default`` when unset or empty."""
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{key} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise error(f"{key} must be between {low:g} and {high:g}, got {raw!r}")
    return value
