"""tokenmeter's operations command: replay, backfill, usage preview and status.

It runs with the same environment as the functions (NATS_URL, LAGO_API_URL, the queue URLs,
METERING_CONFIG, ...) and reuses their code, found where Lambda would find it.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _folder in ("layers/core", "layers/nats", "functions/count_tokens", "functions/lago_sync"):
    if str(_ROOT / _folder) not in sys.path:
        sys.path.append(str(_ROOT / _folder))
