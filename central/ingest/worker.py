"""``homecall central ingest``: MQTT ingest as its own process, with no HTTP API.

Run N of them beside one ``homecall central serve --no-ingest``: they share the broker's
``$share/central/...`` subscriptions (the broker deals each message to one of them) and
write to one PostgreSQL database; what a gateway is acked comes from the database (the
highest contiguous seq stored), not from a worker's memory, so two workers storing parts of
one gateway's stream ack it correctly. Each needs its own ``--mqtt-client-id``. Time-based
jobs (gateway liveness, backup alerts, escalation, webhook retries) run in the workers started
with ``--supervise``, one at a time: the database chooses the leader
(:mod:`central.supervision.leader`), and another takes over when it dies."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from central.server import _database_override


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database (SQLite path or a postgresql+psycopg URL)")
    parser.add_argument("--mqtt-host")
    parser.add_argument("--mqtt-port", type=int)
    parser.add_argument("--mqtt-user")
    parser.add_argument("--mqtt-password-file", type=Path)
    parser.add_argument("--mqtt-client-id", required=True,
                        help="unique per worker, e.g. central-ingest-2")
    parser.add_argument("--signing-key", type=Path, help="signs gateway plans")
    parser.add_argument("--supervise", action="store_true",
                        help="also run the time-based jobs when this worker holds the lead "
                             "(give it to two or more: one leads, the others stand by)")
    parser.add_argument("--clock", help="'system' or 'scaled:START:SPEED:ANCHOR'")


def run(args: argparse.Namespace) -> int:
    import logging

    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.ingest.session import Ingest
    from central.settings import CentralSettings
    from central.store import Store
    from central.supervision.leader import JobsLeader
    from central.supervision.runner import Supervisor
    from homecall.clock import clock_from_spec

    log = logging.getLogger("central.ingest.worker")
    overrides = {**_database_override(args.db), "mqtt_host": args.mqtt_host,
                 "mqtt_port": args.mqtt_port, "mqtt_user": args.mqtt_user,
                 "mqtt_client_id": args.mqtt_client_id, "clock": args.clock,
                 "signing_key_path": args.signing_key}
    if args.mqtt_password_file:
        overrides["mqtt_password"] = args.mqtt_password_file.read_text().strip()
    settings = CentralSettings(**{k: v for k, v in overrides.items() if v is not None})
    database = Database(settings.database_url)
    database.check()
    upgrade(database)
    clock = clock_from_spec(settings.clock)
    store = Store(database)
    ingest = Ingest(settings, store, clock)
    supervisor = Supervisor(store, clock, leader=JobsLeader(database, settings.mqtt_client_id),
                            retention_years=settings.retention_years,
                            hearing=ingest.hearing_since,
                            ) if args.supervise else None
    if supervisor is not None:
        ingest.status_listeners.append(supervisor.wake)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    ingest.start()
    if supervisor is not None:
        supervisor.start()
    print(f"central ingest {settings.mqtt_client_id}: database {database.describe()}, "
          f"broker {settings.mqtt_host}:{settings.mqtt_port}"
          f"{', supervising' if supervisor else ''}", flush=True)
    try:
        stopping.wait()
    finally:
        log.info("stopping")
        if supervisor is not None:
            supervisor.stop()
        ingest.stop()
        database.dispose()
    return 0
