"""``homecall central serve``: run the HTTP API and MQTT ingest in one process, or, with
``--no-ingest``, the HTTP API alone beside ``homecall central ingest`` workers."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database: an SQLite file path or a URL such as "
                        "postgresql+psycopg://user:pass@host/homecall (default var/central.db)")
    parser.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="HTTP port (default 8000)")
    parser.add_argument("--mqtt-host")
    parser.add_argument("--mqtt-port", type=int)
    parser.add_argument("--mqtt-user")
    parser.add_argument("--mqtt-password-file", type=Path)
    parser.add_argument("--mqtt-client-id")
    parser.add_argument("--signing-key", type=Path,
                        help="central's Ed25519 private key (raw or hex): signs gateway plans")
    parser.add_argument("--clock", default=os.environ.get("HOMECALL_CLOCK"),
                        help="'system' or 'scaled:START:SPEED:ANCHOR'")
    parser.add_argument("--no-ingest", action="store_true",
                        help="HTTP API only: ingest runs in `homecall central ingest` workers")


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # import chatter

    from central.app import create_app
    from central.db.engine import Database
    from central.ingest.session import probe_broker
    from central.settings import CentralSettings

    overrides = {
        **_database_override(args.db),
        "http_host": args.host,
        "http_port": args.port,
        "mqtt_host": args.mqtt_host,
        "mqtt_port": args.mqtt_port,
        "mqtt_user": args.mqtt_user,
        "mqtt_client_id": args.mqtt_client_id,
        "clock": args.clock,
        "signing_key_path": args.signing_key,
    }
    if args.mqtt_password_file:
        overrides["mqtt_password"] = args.mqtt_password_file.read_text().strip()
    if getattr(args, "no_ingest", False):
        overrides["api_only"] = True
    settings = CentralSettings(**{k: v for k, v in overrides.items() if v is not None})
    database = Database(settings.database_url)  # a bad path or URL: one line, no traceback
    database.check()
    broker = f"{settings.mqtt_host}:{settings.mqtt_port}"
    unreachable = probe_broker(settings.mqtt_host, settings.mqtt_port)
    print(f"central: http://{settings.http_host}:{settings.http_port}/ "
          f"(API docs at /docs)", flush=True)
    print(f"central: database {database.describe()}", flush=True)
    print(f"central: broker {broker} " + (
        "reachable" if unreachable is None
        else f"unreachable: {unreachable} (will keep trying, and log it until connected)"
    ), flush=True)
    app = create_app(settings, database=database, with_ingest=not settings.api_only)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")
    return 0


def _database_override(db: str | None) -> dict[str, object]:
    """``--db`` as settings: a URL goes to ``database``, a path to ``db_path``."""
    if db is None:
        return {}
    if "://" in db:
        return {"database": db}
    return {"db_path": Path(db)}
