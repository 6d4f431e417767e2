"""Events: the event-bus contract and the outbox of committed writes."""
