"""Where a record was logged, as the fields attribution rules read (`@logGroup`, `@logStream`, `@bucket`,
`@key`: core.config.ORIGIN_FIELDS): a tenant's own log group, or an S3 prefix per customer, says who pays.

Read from the record's ``source`` (or, for S3, its ``origin``), so that a dead letter replayed from its source
is attributed as the record first was."""

from __future__ import annotations

import re
from typing import Any

from .records import RawRecord

# What metering appends to an S3 object's address for one record of it: the line, the element of an array, the
# span of an OpenTelemetry document.
_S3_SUFFIX = re.compile(r"(?:#line=\d+)?(?:\[\d+\])?(?:#span=[^#]*)?\Z")


def log_origin(group: Any, stream: Any) -> dict[str, Any]:
    return {"@logGroup": group, "@logStream": stream}


def record_origin(raw: RawRecord) -> dict[str, Any]:
    """The origin fields of ``raw``: a CloudWatch line's group and stream, an S3 record's bucket and key."""
    where = raw.origin if raw.origin is not None else raw.source
    if where.startswith("s3://"):
        address = where if raw.origin is not None else _S3_SUFFIX.sub("", where, count=1)
        bucket, _, key = address[len("s3://"):].partition("/")
        return {"@bucket": bucket, "@key": key}
    if where.startswith("cloudwatch:"):
        # cloudwatch:<group>:<stream>:<event>; neither a group nor a stream name may hold a colon.
        parts = where.split(":", 3)
        if len(parts) == 4:
            return log_origin(parts[1], parts[2])
    return {}
