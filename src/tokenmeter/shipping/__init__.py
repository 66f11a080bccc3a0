"""lago_sync: usage from the JetStream ledger into Lago, exactly once, and reconciled."""
