"""count_tokens: inference log records in, usage events and dead letters out."""
