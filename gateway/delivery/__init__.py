"""Getting events from the home to central without loss: the SQLite journal (every event
is written here first) and the MQTT outbox (publishes from the journal until central acks)."""
