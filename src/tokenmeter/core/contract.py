"""The usage-event contract beyond its envelope: what every door checks before an event goes on.

``UsageEvent.from_dict`` checks the envelope (ids, timestamp format, properties an object). This checks
what Lago would bill wrongly or never: a metric code no plan prices, a token count that is negative,
fractional or absurd (Lago's sum would subtract or explode), a token type outside the contract, no
model, a timestamp older than the ledger keeps or in the future, a property nobody bills. Every door
uses the same rules: publish_event's HTTP route (400 naming each field), its SQS trigger and lago_sync
(a dead letter with the reason, the rest go on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from .config import MeteringConfig
from .events import TOKEN_TYPES, UsageEvent, timestamp_ms
from .identifiers import repeated_identifier_problem

DEFAULT_MAX_FUTURE_SECONDS = 300.0
_TOKEN_TYPES = frozenset(TOKEN_TYPES)


@dataclass(frozen=True)
class Contract:
    codes: frozenset[str]
    tokens: str  # property names, as the metering config names them
    model: str
    token_type: str
    extra_properties: frozenset[str] = frozenset()
    max_tokens: int = 10**9
    max_age_seconds: float = 62 * 86_400.0  # the USAGE stream's max age
    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS

    @classmethod
    def from_config(cls, config: MeteringConfig, max_age_seconds: float) -> Contract:
        names = config.property_names
        return cls(frozenset({config.metric_code, *config.extra_metric_codes}), names["tokens"], names["model"],
                   names["token_type"], frozenset(config.extra_properties), config.max_tokens, max_age_seconds,
                   config.max_future_seconds)

    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset({self.tokens, self.model, self.token_type} | self.extra_properties)

    def errors(self, event: UsageEvent, now: float | None = None) -> dict[str, str]:
        """Each field that breaks the contract, with why; empty for an event that keeps it."""
        now = time.time() if now is None else now
        properties, timestamp = event.properties, event.timestamp
        tokens, token_type = properties.get(self.tokens), properties.get(self.token_type)
        # The checks below, in one pass for the usual event (every door runs this for every event). A timestamp
        # with three decimals, as events are written, reads as float() reads it: the same double as its milliseconds
        # / 1000.
        if (event.code in self.codes and type(tokens) is int and 0 <= tokens <= self.max_tokens
                and type(token_type) is str and token_type in _TOKEN_TYPES
                and repeated_identifier_problem(properties.get(self.model)) is None
                and self._known.issuperset(properties) and timestamp[-4:-3] == "."
                and now - self.max_age_seconds <= float(timestamp) <= now + self.max_future_seconds):
            return {}
        return self._found(event, now)

    def _found(self, event: UsageEvent, now: float) -> dict[str, str]:
        found: dict[str, str] = {}
        if event.code not in self.codes:
            found["code"] = f"not a metric code tokenmeter bills (metering config: {', '.join(sorted(self.codes))})"
        properties = event.properties
        tokens = properties.get(self.tokens)
        if type(tokens) is not int or not 0 <= tokens <= self.max_tokens:
            found[f"properties.{self.tokens}"] = f"required, a whole number from 0 to {self.max_tokens:,}"
        if properties.get(self.token_type) not in TOKEN_TYPES:
            found[f"properties.{self.token_type}"] = f"required, one of {', '.join(TOKEN_TYPES)}"
        problem = repeated_identifier_problem(properties.get(self.model))
        if problem is not None:
            found[f"properties.{self.model}"] = problem
        known = self._known
        for name in properties:
            if name not in known:
                found[f"properties.{name}"] = "not a property tokenmeter bills (the metering config's extra_properties)"
        at = timestamp_ms(event.timestamp) / 1000
        if at < now - self.max_age_seconds:
            found["timestamp"] = f"older than the ledger keeps ({self.max_age_seconds / 86_400:g} days)"
        elif at > now + self.max_future_seconds:
            found["timestamp"] = f"more than {self.max_future_seconds:g} s in the future"
        return found
