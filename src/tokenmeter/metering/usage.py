"""One inference's usage as metering hands it over: the usage events it becomes, as objects or as JSON.

Metering makes one of these per inference rather than one UsageEvent per token type: the events differ
only in their token type and count, and writing their JSON straight from it is most of what count_tokens
spends per record after parsing (bench/count_tokens_bench.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenmeter.core import UsageEvent, ascii_json

# Parts of the JSON kept per subscription and per model: few distinct ones, each written many times.
_PARTS_KEPT = 10_000


class EventShape:
    """What every event of one config carries besides the inference's own values: the metric code and the
    property names. Writes an inference's events as the same JSON UsageEvent.to_json gives."""

    def __init__(self, code: str, property_names: dict[str, str]):
        self.code = code
        self.tokens_key, self.model_key, self.type_key = (
            property_names["tokens"], property_names["model"], property_names["token_type"])
        # An event's JSON is '{"transaction_id":"<key>-<type>' + the subscription's part + '<timestamp>'
        # + '","properties":{"tokens":' + '<tokens>' + the model's part + '<type>"}}': the two parts are
        # written once per subscription and model.
        self._subscription_parts: dict[str, str] = {}
        self._model_parts: dict[str, str] = {}
        self._after_timestamp = f'","properties":{{{_quote(self.tokens_key)}:'

    def json(self, usage: InferenceUsage) -> str:
        """The inference's events as compact ASCII JSON, separated by commas (as a JSON array holds them)."""
        subscription = self._subscription_parts.get(usage.subscription) or self._subscription_part(usage.subscription)
        model = self._model_parts.get(usage.model) or self._model_part(usage.model)
        head, middle = '{"transaction_id":"' + usage.key + "-", subscription + usage.timestamp + self._after_timestamp
        return ",".join([f'{head}{kind}{middle}{tokens}{model}{kind}"}}}}' for kind, tokens in usage.counts.items()])

    def _subscription_part(self, subscription: str) -> str:
        part = f'","external_subscription_id":{_quote(subscription)},"code":{_quote(self.code)},"timestamp":"'
        return _kept(self._subscription_parts, subscription, part)

    def _model_part(self, model: str) -> str:
        return _kept(self._model_parts, model, f",{_quote(self.model_key)}:{_quote(model)},{_quote(self.type_key)}:\"")

    def events(self, usage: InferenceUsage) -> list[UsageEvent]:
        return [
            UsageEvent(f"{usage.key}-{kind}", usage.subscription, self.code, usage.timestamp,
                       {self.tokens_key: tokens, self.model_key: usage.model, self.type_key: kind})
            for kind, tokens in usage.counts.items()
        ]


_shapes: dict[tuple[str, str, str, str], EventShape] = {}


def event_shape(code: str, property_names: dict[str, str]) -> EventShape:
    """The shape of a config's events, one per Lambda environment: what it keeps outlives an invocation."""
    key = (code, property_names["tokens"], property_names["model"], property_names["token_type"])
    shape = _shapes.get(key)
    if shape is None:
        shape = _shapes[key] = EventShape(code, property_names)
    return shape


@dataclass(slots=True)
class InferenceUsage:
    """One inference's usage: an event per token type in ``counts`` (none of them zero), with transaction id
    ``<key>-<token type>``."""

    key: str  # the record key (tokenmeter.core.record_key) of the inference's identity
    subscription: str
    timestamp: str  # Unix seconds with milliseconds, as events carry it
    model: str
    counts: dict[str, int]
    shape: EventShape

    def events(self) -> list[UsageEvent]:
        return self.shape.events(self)

    def json(self) -> str:
        """The events as compact ASCII JSON, separated by commas."""
        return self.shape.json(self)


def _quote(text: str) -> str:
    """``text`` as a JSON string with everything outside ASCII escaped, as ascii_json writes it."""
    return ascii_json(text).decode()


def _kept(parts: dict[str, str], key: str, part: str) -> str:
    if len(parts) >= _PARTS_KEPT:
        parts.clear()
    parts[key] = part
    return part
