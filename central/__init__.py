"""The central service: MQTT ingest, storage, the HTTP API and the monitoring dashboard."""


class CentralError(Exception):
    """Root of every error central raises."""
