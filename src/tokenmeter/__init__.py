"""tokenmeter: exact, de-duplicated LLM token metering from inference logs into Lago.

One package, in parts that each Lambda function takes only what it needs of:
- ``tokenmeter.core``: the usage-event contract, ids, config, dead letters, secrets (every function);
- ``tokenmeter.nats``: the managed NATS connection, publishing, subjects (publish_event, lago_sync);
- ``tokenmeter.metering``: inference logs into usage events (count_tokens);
- ``tokenmeter.ingestion``: SQS messages and HTTP requests into JetStream (publish_event);
- ``tokenmeter.shipping``: the ledger into Lago, and reconciliation (lago_sync);
- ``tokenmeter.cli``: the ``tokenmeter`` operations command (everything above).
"""

__version__ = "0.2.0"
