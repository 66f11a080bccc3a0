"""NATS credentials from a Secrets Manager secret, as nats-py connect options.

The secret holds a ``.creds`` file's text, an nkey seed, a token, or JSON with
``user``/``password``, ``token``, ``creds`` or ``nkey_seed``. Errors describe
the secret's shape, never its content.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .exceptions import NatsSettingsError

_CREDS_MARKER = "-----BEGIN NATS USER JWT-----"
_USER_SEED = re.compile(r"SU[A-Z2-7]{56}")


def connect_options(secret: str) -> dict[str, Any]:
    """nats-py ``connect`` keyword arguments for the credentials in ``secret``."""
    from nats.aio.client import RawCredentials

    text = secret.strip()
    if not text:
        raise NatsSettingsError("NATS credentials secret is empty")
    if not text.startswith("{"):  # JSON first: {"creds": ...} holds the creds marker too
        if _CREDS_MARKER in text:
            return {"user_credentials": RawCredentials(text)}
        if _USER_SEED.fullmatch(text):
            return {"nkeys_seed_str": text}
        return {"token": text}
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise NatsSettingsError("NATS credentials secret starts with '{' but is not valid JSON") from None
    if isinstance(document, dict):
        if isinstance(document.get("user"), str) and isinstance(document.get("password"), str):
            return {"user": document["user"], "password": document["password"]}
        if isinstance(document.get("token"), str):
            return {"token": document["token"]}
        if isinstance(document.get("creds"), str):
            return {"user_credentials": RawCredentials(document["creds"])}
        if isinstance(document.get("nkey_seed"), str):
            return {"nkeys_seed_str": document["nkey_seed"]}
    raise NatsSettingsError("NATS credentials secret JSON needs 'user' and 'password', 'token', 'creds' or 'nkey_seed'")
