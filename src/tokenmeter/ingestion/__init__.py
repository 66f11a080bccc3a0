"""publish_event's logic: usage events from the UsageQueue (SQS) and from HTTP into JetStream."""
