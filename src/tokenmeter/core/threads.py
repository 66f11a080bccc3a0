"""Thread pools kept for the Lambda environment: starting threads again for every invocation cost more CPU than the
work they wait on (an S3 object's GET, an SQS batch's answer). Threads start as they are first needed."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor


@functools.cache
def shared_pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The environment's pool named ``name`` (its threads' name prefix), of ``workers`` threads."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
