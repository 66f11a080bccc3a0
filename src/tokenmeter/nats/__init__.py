"""The managed NATS connection every tokenmeter function uses to reach JetStream."""

from .connection import ManagedConnection, redact
from .exceptions import NatsLayerError, NatsSettingsError, NatsUnavailable, StreamConfigConflict
from .publisher import PublishOutcome, publish_events
from .settings import NatsSettings
from .streams import ensure_consumer, ensure_stream
from .subjects import decode_token, encode_token, subject_for

__all__ = [
    "ManagedConnection",
    "NatsLayerError",
    "NatsSettings",
    "NatsSettingsError",
    "NatsUnavailable",
    "PublishOutcome",
    "StreamConfigConflict",
    "decode_token",
    "encode_token",
    "ensure_consumer",
    "ensure_stream",
    "publish_events",
    "redact",
    "subject_for",
]
