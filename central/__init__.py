"""The central service: MQTT ingest, storage, the HTTP API and the monitoring dashboard."""


from homecall import HomeCallError


class CentralError(HomeCallError):
    """Root of every error central raises."""
