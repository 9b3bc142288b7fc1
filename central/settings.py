"""Central's settings, in one pydantic-settings object (environment prefix ``HOMECALL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class CentralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOMECALL_", extra="ignore")

    db_path: Path = Path("var/central.db")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_user: str | None = None
    mqtt_password: str | None = None
    mqtt_client_id: str = "central-1"
    clock: str = "system"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    ingest_batch: int = 500
    signing_key_path: Path | None = None  # raw/hex Ed25519 private key: signs gateway plans
