"""Shared tokenmeter model: usage events, transaction ids and the metering config."""

from .config import MeteringConfig, load_config, parse_config
from .events import TOKEN_TYPES, UsageEvent, ascii_json, format_timestamp, parse_rfc3339_ms, timestamp_ms
from .exceptions import InvalidEventError, MeteringConfigError, SecretUnavailable, TokenmeterError
from .ids import record_key, transaction_id

__all__ = [
    "TOKEN_TYPES",
    "InvalidEventError",
    "MeteringConfig",
    "MeteringConfigError",
    "SecretUnavailable",
    "TokenmeterError",
    "UsageEvent",
    "ascii_json",
    "format_timestamp",
    "load_config",
    "parse_config",
    "parse_rfc3339_ms",
    "record_key",
    "timestamp_ms",
    "transaction_id",
]
