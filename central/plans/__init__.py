"""Visit plans at central: checking a plan against the people records, importing plans from
a rostering system's CSV, and saving and sending them (the store signs nothing; ingest signs
and publishes)."""
