"""Secrets from AWS Secrets Manager, cached across invocations by Powertools."""

from __future__ import annotations

from .exceptions import SecretUnavailable

SECRET_MAX_AGE_SECONDS = 300


def load_secret(arn: str, fresh: bool = False) -> str:
    """The secret's text (``fresh``: not from the cache, e.g. after the service refused the old value);
    SecretUnavailable names the ARN and the failure, never the value."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=fresh)
    except parameters.exceptions.GetParameterError as exc:
        raise SecretUnavailable(f"cannot read secret {arn}: {type(exc.__cause__ or exc).__name__}") from None
    return value.decode() if isinstance(value, bytes) else str(value)
