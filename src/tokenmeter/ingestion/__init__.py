"""publish_event: usage events from the UsageQueue and from HTTP into JetStream."""
