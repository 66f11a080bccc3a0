"""Errors raised by the shared tokenmeter model and configuration."""

from __future__ import annotations


class TokenmeterError(Exception):
    """Base class for every error tokenmeter raises on purpose."""


class MeteringConfigError(TokenmeterError):
    """Raised when METERING_CONFIG is missing, unreadable or has an invalid key."""


class SecretUnavailable(TokenmeterError):
    """Raised when a Secrets Manager secret cannot be read."""


class InvalidEventError(TokenmeterError):
    """Raised when a usage event does not follow the event contract.

    ``errors`` maps each offending field to what is wrong with it, so an HTTP
    caller can be told field by field.
    """

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{field}: {why}" for field, why in errors.items()))
