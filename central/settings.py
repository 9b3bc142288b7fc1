"""Central's settings, in one pydantic-settings object (environment prefix ``HOMECALL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class CentralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMECALL_", extra="ignore")

    db_path: Path = Path("var/central.db")
    #: A SQLAlchemy URL (``postgresql+psycopg://user@host/db``); when unset, ``db_path`` is
    #: used as an SQLite file.
    database: str | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_user: str | None = None
    mqtt_password: str | None = None
    mqtt_client_id: str = "central-1"
    clock: str = "system"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    ingest_batch: int = 500
    broker_report_s: float = 10.0  # how often "broker unreachable" is logged until connected
    #: Gateway liveness and backup detection in this process (off: another process does it).
    supervise: bool = True
    #: Call-monitoring data about a person is kept this many years after their care ended
    #: (``care_ended_on``), then purged by the daily retention job.
    retention_years: int = 2
    #: This process serves the HTTP API only: ingest runs in ``homecall central ingest``
    #: processes, so readiness does not wait for a broker connection here.
    api_only: bool = False
    signing_key_path: Path | None = None  # raw/hex Ed25519 private key: signs gateway plans
    #: Staff sessions: a browser session cookie lasts this long, a bearer token longer.
    session_hours: float = 12.0
    token_days: float = 30.0
    #: Mark the session cookie Secure even on plain HTTP (behind a TLS-terminating proxy).
    cookie_secure: bool = False
    #: Login throttling: failed attempts allowed per user name and per client address
    #: within the window before further attempts are refused (HTTP 429).
    login_window_s: int = 900
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    #: Gateway enrolment: central's CA directory (``homecall central init-ca``) and the
    #: broker's mutual-TLS listener that enrolled gateways are told to use.
    ca_dir: Path | None = None
    gateway_broker_host: str = "127.0.0.1"
    gateway_broker_tls_port: int = 8883

    @property
    def database_url(self) -> str:
        """The database central uses, as a SQLAlchemy URL."""
        from central.db.engine import database_url

        return database_url(self.database or self.db_path)
