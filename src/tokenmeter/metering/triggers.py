"""Decode the triggers into raw records: CloudWatch Logs subscriptions (to the function, or through a Kinesis
stream), S3 objects (s3_objects.py) notified directly, through EventBridge, through an SNS topic (S3 -> SNS ->
Lambda) or through an SQS queue (S3 -> SQS, S3 -> SNS -> SQS, S3 -> EventBridge -> SQS), many objects per
invocation, and records an app sends to that queue or topic itself (LiteLLM's SQS logger: a StandardLoggingPayload
per message)."""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tokenmeter.core.dead_letters import DeadLetter

from .fields import rfc3339_ms
from .prefetch import PrefetchingS3
from .records import (
    BEDROCK_BODY,
    DECODE_ERROR,
    OWN_STATE,
    PLATFORM_LINE,
    PLATFORM_PREFIXES,
    TEST_EVENT,
    UNKNOWN_TRIGGER,
    UNPARSED,
    DeadLetterBudget,
    RawRecord,
    ReadLimits,
    Skipped,
)
from .s3_objects import (
    GZIP_MAGIC,
    Notification,
    eventbridge_notification,
    get_object_args,
    is_eventbridge_object,
    s3_notifications,
    s3_records,
)
from .stream_memory import PREFIX as STREAM_MEMORY_PREFIX

Item = RawRecord | DeadLetter | Skipped

# Where Bedrock's invocation logging puts a request or response body too large to log inline (the log record
# names it in inputBodyS3Path / outputBodyS3Path, and holds the token counts): .../<region>/YYYY/MM/DD/HH/data/.
_BEDROCK_BODY = re.compile(r"(?:^|/)AWSLogs/[^/]+/BedrockModelInvocationLogs/[^/]+/\d{4}/\d{2}/\d{2}/\d{2}/data/")


def trigger_records(event: Any, s3_client: Callable[[], Any], limits: ReadLimits | None = None,
                    budget: DeadLetterBudget | None = None) -> Iterator[Item | LogLines | QueuedObjects]:
    """Every record a trigger event carries (a CloudWatch batch's as one LogLines, an SQS message's objects as one
    QueuedObjects); an event of no known trigger is one dead letter."""
    if isinstance(event, dict) and "awslogs" in event:
        yield from cloudwatch_lines(event)
    elif is_queued(event):
        yield from queued_objects(event["Records"], s3_client, limits, budget)
    elif is_kinesis(event):
        yield from kinesis_records(event["Records"])
    elif is_sns(event):
        yield from _objects(sns_messages(event["Records"]), s3_client, limits, budget)
    elif isinstance(event, dict) and isinstance(event.get("Records"), list):
        yield from _objects(s3_notifications(event), s3_client, limits, budget)
    elif is_eventbridge_object(event):
        yield from _objects([eventbridge_notification(event)], s3_client, limits, budget)
    else:
        yield DeadLetter(UNKNOWN_TRIGGER, "neither a CloudWatch Logs nor an S3 event", "trigger", str(event))


def is_queued(event: Any) -> bool:
    """An SQS batch (S3 notifications delivered through a queue): Lambda then takes partial batch failures."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records)


def is_sns(event: Any) -> bool:
    """An SNS topic's delivery to the function (its records spell the source `EventSource`)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and all(
        isinstance(record, dict) and record.get("EventSource") == "aws:sns" for record in records)


def is_kinesis(event: Any) -> bool:
    """A Kinesis Data Streams batch (a CloudWatch Logs subscription's stream, or records apps put there)."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:kinesis" for record in records)


def kinesis_records(records: list[dict[str, Any]]) -> Iterator[Item | LogLines]:
    """A Kinesis batch's records: a CloudWatch Logs subscription's payloads (base64 of gzip) are read as the
    subscription delivers them to a function, under the same ids; any other record (JSON an app put there,
    gzipped or not) is a record, its identity its event id (shard and sequence number, the same on retries)."""
    for position, record in enumerate(records):
        kinesis = record.get("kinesis") if isinstance(record.get("kinesis"), dict) else {}
        event_id = record.get("eventID") if isinstance(record.get("eventID"), str) else f"{position}"
        where = f"kinesis:{event_id}"
        try:
            data = base64.b64decode(kinesis.get("data"), validate=True)
            data = gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
        except (TypeError, ValueError, binascii.Error, OSError, EOFError, zlib.error) as exc:
            yield DeadLetter(DECODE_ERROR, f"Kinesis record: {type(exc).__name__}: {exc}", where, str(kinesis.get("data")))
            continue
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = UNPARSED  # the meter's reading tells why (or takes what only the standard library reads)
        if _is_log_payload(value):
            yield from _payload_lines(value, where)
            continue
        arrived = kinesis.get("approximateArrivalTimestamp")
        fallback = round(arrived * 1000) if type(arrived) in (int, float) and 0 <= arrived < 10**11 else None
        yield RawRecord(where, where, data, fallback, value)  # (shard and sequence: the same on retries)


@dataclass(frozen=True)
class QueuedObjects:
    """The objects one SQS message notifies: ``items`` reads them. If an object cannot be read now (S3ReadError, or
    S3 refusing it), the message alone is delivered again (a partial batch failure), with the same ids."""

    message_id: str
    items: Iterator[Item | LogLines]


def queued_objects(messages: list[dict[str, Any]], s3_client: Callable[[], Any], limits: ReadLimits | None = None,
                   budget: DeadLetterBudget | None = None) -> Iterator[QueuedObjects | Item]:
    """An SQS batch's messages, each an S3 notification, one wrapped by SNS, an EventBridge "Object Created" event,
    S3's test event, or a record of its own. The batch's objects are opened a few ahead of their reading
    (prefetch.py)."""
    read: list[tuple[str, list[Notification | DeadLetter]] | Item] = [
        _queued_message(message) for message in messages]
    planned = [get_object_args(n.bucket, n.key, n.version_id, n.etag) for found in read if isinstance(found, tuple)
               for n in found[1] if isinstance(n, Notification) and _skip_reason(n.key) is None]
    prefetching = PrefetchingS3(s3_client(), planned) if len(planned) > 1 else None  # (one: nothing to overlap)
    client = s3_client if prefetching is None else lambda: prefetching
    try:
        for found in read:
            if isinstance(found, tuple):
                message_id, notifications = found
                yield QueuedObjects(message_id, _objects(notifications, client, limits, budget))
            else:
                yield found
    finally:
        if prefetching is not None:
            prefetching.close()


def _queued_message(message: dict[str, Any]) -> tuple[str, list[Notification | DeadLetter]] | Item:
    message_id, body = message.get("messageId"), message.get("body")
    source = f"sqs:{message_id}"
    if not isinstance(message_id, str):
        return DeadLetter(UNKNOWN_TRIGGER, "an SQS message without its messageId", source, str(body))
    found = _notified(body, source, _sent_ms(message))
    return (message_id, found) if isinstance(found, list) else found


def sns_messages(records: list[dict[str, Any]]) -> Iterator[Notification | Item]:
    """An SNS topic's messages delivered to the function: S3's notifications fanned out (S3 -> SNS -> Lambda), or
    records an app published, each identified by its message id (the same on Lambda's retries)."""
    for position, record in enumerate(records):
        sns = record.get("Sns") if isinstance(record.get("Sns"), dict) else {}
        message_id = sns.get("MessageId")
        source = f"sns:{message_id if isinstance(message_id, str) else position}"
        found = _notified(sns.get("Message"), source, rfc3339_ms(sns.get("Timestamp")))
        if type(found) is RawRecord and not isinstance(message_id, str):
            # (A record's identity is its message id: its place in the delivery would repeat in the next one.)
            yield DeadLetter(UNKNOWN_TRIGGER, "a record in an SNS message without its MessageId", source,
                             str(sns.get("Message")))
        elif isinstance(found, list):
            yield from found
        else:
            yield found


def _notified(text: Any, source: str, sent_ms: int | None) -> list[Notification | DeadLetter] | Item:
    """What a message's text carries: the objects an S3 notification names (S3's own, through SNS, or EventBridge's
    "Object Created"), S3's test event, or a record of its own, at ``sent_ms`` if it has no time."""
    payload = _json_or_none(text)
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "TopicArn" in payload:
        text = payload.get("Message")  # through SNS, without raw message delivery
        payload = _json_or_none(text)
    if isinstance(payload, dict):
        if payload.get("Event") == "s3:TestEvent":
            return Skipped(TEST_EVENT, source)
        if isinstance(payload.get("Records"), list):
            return list(s3_notifications(payload))
        if is_eventbridge_object(payload):
            return [eventbridge_notification(payload)]
        if payload.get("__encrypted__") is True:
            return DeadLetter(DECODE_ERROR, "a LiteLLM payload encrypted by its SQS logger (application-level "
                              "encryption): count_tokens holds no key to read it", source, str(text))
    if isinstance(payload, (dict, list)):
        return RawRecord(source, source, text, sent_ms, payload)  # (the message id: the same on every delivery)
    return DeadLetter(UNKNOWN_TRIGGER, "a message that is neither an S3 notification nor a JSON record", source,
                      str(text))


def _sent_ms(message: dict[str, Any]) -> int | None:
    """When the message was sent (its SentTimestamp attribute, ms): the time of a record that has none."""
    attributes = message.get("attributes")
    sent = attributes.get("SentTimestamp") if isinstance(attributes, dict) else None
    return int(sent) if isinstance(sent, str) and sent.isascii() and sent.isdigit() and len(sent) <= 15 else None


def _json_or_none(text: Any) -> Any:
    try:
        return orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        return None


def _objects(notifications: Iterable[Notification | Item], s3_client: Callable[[], Any],
             limits: ReadLimits | None, budget: DeadLetterBudget | None) -> Iterator[Item | LogLines]:
    """The records of every object an S3 notification names (and the items beside them, as they are)."""
    for found in notifications:
        if not isinstance(found, Notification):
            yield found
        elif (reason := _skip_reason(found.key)) is not None:
            yield Skipped(reason, f"s3://{found.bucket}/{found.key}")
        else:
            yield from _log_events_read(s3_records(s3_client(), found.bucket, found.key, limits, budget,
                                                   found.version_id, found.etag))


def _skip_reason(key: str) -> str | None:
    """Why an object in the log bucket is not read: count_tokens' own state, or a Bedrock body whose log record
    bills it (reading it too would bill an Anthropic response twice, and dead-letter every other body)."""
    if key.startswith(STREAM_MEMORY_PREFIX):
        return OWN_STATE
    if "/data/" in key and _BEDROCK_BODY.search(key):
        return BEDROCK_BODY
    return None


def cloudwatch_records(event: dict[str, Any]) -> Iterator[Item]:
    """Records of a CloudWatch Logs subscription event (base64 of gzip of JSON), one item per log event."""
    for found in cloudwatch_lines(event):
        if isinstance(found, LogLines):
            yield from (found.item(position) for position in range(len(found.events)))
        else:
            yield found


def cloudwatch_lines(event: dict[str, Any]) -> Iterator[DeadLetter | LogLines]:
    """A CloudWatch Logs subscription event's log events as one LogLines (what the meter reads fastest), or the
    dead letter of a payload that cannot be read."""
    data = event["awslogs"].get("data") if isinstance(event.get("awslogs"), dict) else None
    try:
        payload = orjson.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (TypeError, ValueError, binascii.Error, OSError, EOFError, zlib.error, orjson.JSONDecodeError) as exc:
        yield DeadLetter(DECODE_ERROR, f"CloudWatch Logs payload: {type(exc).__name__}: {exc}", "cloudwatch", str(data))
        return
    yield from _payload_lines(payload, "cloudwatch")


def _payload_lines(payload: Any, where: str) -> Iterator[DeadLetter | LogLines]:
    """A decoded CloudWatch Logs payload's log events (none for CloudWatch's own CONTROL_MESSAGE)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("logEvents", []), list):
        yield DeadLetter(DECODE_ERROR, "CloudWatch Logs payload has no logEvents list", where, str(payload))
        return
    if payload.get("messageType") == "CONTROL_MESSAGE":
        return
    yield LogLines(payload.get("logGroup"), payload.get("logStream"), payload.get("logEvents", []))


def _is_log_payload(value: Any) -> bool:
    """A decoded CloudWatch Logs subscription payload (what its Kinesis stream or Firehose archive carries)."""
    return type(value) is dict and "logEvents" in value and "messageType" in value


def _log_events_read(items: Iterator[Item]) -> Iterator[Item | LogLines]:
    """An object's records; a record that is a CloudWatch Logs payload (a log group archived to S3 through a
    Firehose subscription) is its log events, read as the subscription delivers them: same ids, so a log event
    both subscribed and archived bills once."""
    for item in items:
        value = item.value if type(item) is RawRecord else None
        if _is_log_payload(value):
            yield from _payload_lines(value, item.source)  # type: ignore[union-attr]
        else:
            yield item


@dataclass(slots=True)
class LogLines:
    """The log events of one CloudWatch Logs batch, each a record.

    The meter reads them in one loop: ``parsed`` gives each line's JSON, and a line the meter cannot bill in one
    step becomes its item (``item``), a RawRecord or what the line is instead, as any other record."""

    group: Any
    stream: Any
    events: list[Any]

    def parsed(self) -> Iterator[tuple[int, Any, str | None, int | None]]:
        """(position, the line's JSON or UNPARSED, the record's identity, its log event's time) for each line."""
        for position, log_event in enumerate(self.events):
            value: Any = UNPARSED
            if type(log_event) is not dict:
                yield position, value, None, None
                continue
            message, event_id, timestamp = log_event.get("message"), log_event.get("id"), log_event.get("timestamp")
            if type(message) is str and (at := message.find("{")) >= 0:
                try:  # noqa: SIM105 - suppress() would cost a context manager per line; a prefix is skipped
                    value = orjson.loads(message[at:] if at else message)
                except orjson.JSONDecodeError:
                    pass  # the item's general reading tells why (or takes what only the standard library reads)
            yield (position, value, "cwl:" + event_id if type(event_id) is str and event_id else None,
                   timestamp if type(timestamp) is int and timestamp >= 0 else None)

    def item(self, position: int, value: Any = UNPARSED) -> Item:
        """The log event at ``position`` as a record, a platform line or a dead letter (``value``: its JSON, where
        ``parsed`` read it)."""
        where = f"cloudwatch:{self.group}:{self.stream}"
        log_event = self.events[position]
        if not isinstance(log_event, dict) or not isinstance(log_event.get("message"), str):
            return DeadLetter(DECODE_ERROR, f"logEvents[{position}] has no message", where, str(log_event))
        event_id = log_event.get("id") or f"{self.group}:{self.stream}:{position}"
        timestamp = log_event.get("timestamp")
        fallback = timestamp if type(timestamp) is int and timestamp >= 0 else None
        source = f"{where}:{event_id}"
        message = log_event["message"]
        if message.find("{") < 0 and message.startswith(PLATFORM_PREFIXES):
            return Skipped(PLATFORM_LINE, source)
        # A line with no JSON object may still hold a record as Python prints it: the reading tells.
        record = log_line(source, f"cwl:{event_id}", message, fallback)
        record.value = value
        return record


def log_line(source: str, identity: str, message: str, fallback: int | None) -> RawRecord:
    """A CloudWatch log line as a record: a prefix before the JSON ("<time>\t<request id>\tINFO\t{...}") is
    skipped when the record is read, and kept whole in a dead letter, so that it can be read and replayed."""
    return RawRecord(source, identity, message, fallback, json_at=max(message.find("{"), 0))
