"""Errors of the managed NATS connection layer."""

from __future__ import annotations

from tokenmeter.core import TokenmeterError


class NatsLayerError(TokenmeterError):
    """Base class for errors of the NATS layer."""


class NatsSettingsError(NatsLayerError):
    """Raised when a NATS_* environment variable is missing or invalid."""


class NatsUnavailable(NatsLayerError):
    """Raised when no working connection to NATS can be made within the time allowed."""


class StreamConfigConflict(NatsLayerError):
    """Raised when an existing stream or consumer is configured differently from what tokenmeter needs."""


def describe(exc: BaseException) -> str:
    """An exception as "Type: message" for logs and outcomes (nats-py raises many with no message)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
