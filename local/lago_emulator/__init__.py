"""A Lago emulator: the endpoints tokenmeter uses, with Lago's contract, persisted in SQLite.

Real Lago cannot run on the development machines; this keeps its rules (reference/lago.md):
dedup on (subscription, transaction id) with per-index batch errors, atomic batches of at
most 100, timestamp rules, silent acceptance of unknown subscriptions and codes, and
current usage computed per charge and filter. Faults can be injected for tests.
"""
