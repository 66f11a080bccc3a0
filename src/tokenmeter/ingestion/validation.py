"""Reading usage events out of a request or message body, field by field."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tokenmeter.core import Contract, InvalidEventError, UsageEvent


@dataclass(slots=True)
class Rejected:
    """An event that breaks the contract: its position, what is wrong, and the event as sent."""

    index: int
    errors: dict[str, str]
    raw: Any


def read_events(items: list[Any], contract: Contract | None = None) -> tuple[list[UsageEvent], list[Rejected]]:
    """Valid events, and the rejected ones with their field errors (the envelope's, then the contract's)."""
    events: list[UsageEvent] = []
    rejected: list[Rejected] = []
    now = time.time()  # one clock for the batch's timestamps
    for index, item in enumerate(items):
        try:
            event = UsageEvent.from_dict(item)
        except InvalidEventError as error:
            rejected.append(Rejected(index, error.errors, item))
            continue
        errors = contract.errors(event, now) if contract is not None else {}
        if errors:
            rejected.append(Rejected(index, errors, item))
        else:
            events.append(event)
    return events, rejected


def event_list(document: Any, *, allow_single: bool) -> list[Any]:
    """The ``events`` array of a body; ValueError saying what the body should be."""
    if isinstance(document, dict) and "events" in document:
        if not isinstance(document["events"], list):
            raise ValueError("'events' must be an array of usage events")
        return document["events"]
    if allow_single and isinstance(document, dict):
        return [document]
    raise ValueError('body must be {"events": [...]}' + (" or one usage event" if allow_single else ""))
