"""Shared tokenmeter model: usage events, transaction ids and the metering config."""

from .config import MeteringConfig, load_config, parse_config
from .contract import Contract
from .events import TOKEN_TYPES, UsageEvent, ascii_json, decode_json, format_timestamp, parse_rfc3339_ms, timestamp_ms
from .exceptions import InvalidEventError, MeteringConfigError, SecretUnavailable, TokenmeterError
from .identifiers import MAX_IDENTIFIER_CHARS, identifier_problem
from .ids import record_key, transaction_id

__all__ = [
    "Contract",
    "MAX_IDENTIFIER_CHARS",
    "TOKEN_TYPES",
    "InvalidEventError",
    "MeteringConfig",
    "MeteringConfigError",
    "SecretUnavailable",
    "TokenmeterError",
    "UsageEvent",
    "ascii_json",
    "decode_json",
    "format_timestamp",
    "identifier_problem",
    "load_config",
    "parse_config",
    "parse_rfc3339_ms",
    "record_key",
    "timestamp_ms",
    "transaction_id",
]
