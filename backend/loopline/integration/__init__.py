"""What leaves Loopline for other systems: webhooks over the domain-event outbox."""
