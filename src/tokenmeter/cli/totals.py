"""The running totals as the command reads them: brought up to date first (the same incremental pass the
reconcile function runs; safe beside it), unless asked to only read."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nats.js.errors import BucketNotFoundError, NotFoundError

from tokenmeter.shipping.tally import Tally, tally_settings
from tokenmeter.shipping.totals import LEDGER, Checkpoint
from tokenmeter.shipping.totals_store import TotalsStore

from .environment import Environment

CATCH_UP_SECONDS = 120.0


@dataclass
class Totals:
    store: TotalsStore | None  # None: nothing was ever counted (read-only, and no bucket yet)
    checkpoint: Checkpoint
    behind: int  # ledger messages stored after the totals' checkpoint

    def as_dict(self) -> dict[str, Any]:
        return {"through_seq": self.checkpoint.through.get(LEDGER, 0), "behind": self.behind}


async def current_totals(env: Environment, js: Any, catch_up: bool = True) -> Totals:
    try:
        store = await TotalsStore.open(js, env.reconcile.totals_bucket, env.reconcile.totals_keep_days, create=catch_up)
    except BucketNotFoundError:
        return Totals(None, Checkpoint(), await _last_seq(js, env.nats_settings.stream))
    if catch_up:
        await Tally(js, store, tally_settings(env.nats_settings, env.reconcile, env.metering),
                    time.monotonic() + CATCH_UP_SECONDS).run()
    checkpoint, _ = await store.checkpoint()
    behind = max(0, await _last_seq(js, env.nats_settings.stream) - checkpoint.through.get(LEDGER, 0))
    return Totals(store, checkpoint, behind)


async def _last_seq(js: Any, stream: str) -> int:
    try:
        return (await js.stream_info(stream)).state.last_seq
    except NotFoundError:
        return 0
