"""What lago_sync's and reconcile's settings share: where Lago is, its key, and numbers read with bounds."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tokenmeter.core import MeteringConfigError
from tokenmeter.core.env import env_number

SecretLoader = Callable[[str], str]


def lago_from_env(env: Mapping[str, str], secret_loader: SecretLoader | None) -> tuple[str, str, str | None]:
    """Lago's URL and API key (from LAGO_API_KEY, or the secret LAGO_API_KEY_SECRET_ARN names)."""
    url = env.get("LAGO_API_URL", "").strip()
    if not url:
        raise MeteringConfigError("LAGO_API_URL is not set (e.g. https://api.getlago.com)")
    key = env.get("LAGO_API_KEY", "").strip()
    arn = None
    if not key and env.get("LAGO_API_KEY_SECRET_ARN") and secret_loader is not None:
        arn = env["LAGO_API_KEY_SECRET_ARN"]
        key = secret_loader(arn).strip()
    if not key:
        raise MeteringConfigError("set LAGO_API_KEY_SECRET_ARN (or LAGO_API_KEY) to Lago's API key")
    return url, key, arn


def number(env: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    return env_number(env, key, default, low, high, MeteringConfigError)
