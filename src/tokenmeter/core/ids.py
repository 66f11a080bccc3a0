"""Deterministic transaction ids: the one idempotency key from the log to Lago."""

from __future__ import annotations

from hashlib import blake2b

# 16 bytes (128 bits) make an accidental collision between two records
# vanishingly unlikely while keeping ids short enough for Lago and NATS headers.
_DIGEST_BYTES = 16


# Copying a fresh hash is quicker than making one with its parameters, once per inference.
_EMPTY = blake2b(digest_size=_DIGEST_BYTES)


def record_key(identity: str) -> str:
    """Hash a record's stable identity into a fixed-length hex key."""
    digest = _EMPTY.copy()
    digest.update(identity.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def transaction_id(identity: str, token_type: str) -> str:
    """The transaction id of one token type of one record.

    ``identity`` must be stable across re-deliveries of the same record (a
    provider request id, a CloudWatch log event id, an S3 object's
    bucket/key/etag and line) and differ between two records.
    """
    return f"{record_key(identity)}-{token_type}"
