"""``homecall bench escalation``: from an escalation falling due to the escalation stored,
and to the organisation's webhook receiving it.

Central's real store (SQLite) and Supervisor on APScheduler under a simulated clock at
``--speed`` times real time; one organisation with a household and a webhook subscription
to a local HTTP receiver. ``--alerts`` critical alerts are stored a few simulated seconds
apart and nobody acknowledges them, so each falls due for escalation 5 simulated minutes
after it was stored. For each: the real time from its due moment to the escalation's audit
entry, and to the receiver holding the ``alert.escalated`` webhook (signed, as sent).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## central escalation and webhooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated clock rate")
    parser.add_argument("--spacing-s", type=float, default=30.0,
                        help="simulated seconds between one alert and the next")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, round(share * (len(values) - 1)))]


def measure(workdir: Path, alerts: int, speed: float, spacing_s: float) -> dict[str, Any]:
    import json

    import sqlalchemy as sa

    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.db.tables import alerts as alerts_table
    from central.db.tables import audit
    from central.people.models import HouseholdIn, OrganisationIn
    from central.people.repository import People
    from central.store import Store
    from central.supervision.runner import Supervisor
    from gateway.delivery.journal import Journal, NewEvent
    from homecall.clock import ScaledClock, parse_utc
    from homecall.wire import EventType, Severity

    received: dict[int, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("event") == "alert.escalated":
                received.setdefault(int(body["alert"]["id"]), time.time())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    start = datetime.now(UTC).replace(microsecond=0)
    clock = ScaledClock(start, speed)
    db = Database(f"sqlite:///{workdir / 'central.db'}")
    upgrade(db)
    store = Store(db)
    gateway_id = "gw-bench-escalation"
    people = People(db, clock)
    org = people.create_organisation(OrganisationIn(name="Bench Org"), "bench")
    people.create_household(HouseholdIn(gateway_id=gateway_id, address="1 Bench Road"),
                            org.id, "bench")
    store.add_webhook(org.id, f"http://127.0.0.1:{server.server_address[1]}/hook",
                      "bench-secret-0123456789", "escalated", start, "bench")
    journal = Journal(workdir / "gw.db", gateway_id, "boot-1", synchronous="NORMAL")
    supervisor = Supervisor(store, clock)
    supervisor.start()
    try:
        for i in range(alerts):
            [event] = journal.append([NewEvent(
                EventType.NO_ACCESS, clock.now(), float(i), severity=Severity.CRITICAL,
                visit_id=f"v-{i}")], clock_ok=True)
            store.store_events([(gateway_id, event)], clock.now())
            supervisor.wake()
            time.sleep(spacing_s / speed)
        limit = time.monotonic() + 5 * 60 / speed + 60
        while time.monotonic() < limit and len(received) < alerts:
            time.sleep(0.2)
    finally:
        supervisor.stop()
        journal.close()
        server.shutdown()
    with db.read() as conn:
        rows = conn.execute(sa.select(alerts_table.c.id, alerts_table.c.received_at)).all()
        escalated_at: dict[int, datetime] = {}
        for r in conn.execute(sa.select(audit.c.target, audit.c.at).where(
                audit.c.action == "alert.escalated").order_by(audit.c.id)):
            # the first escalation (later tiers and reminders follow while nobody acts)
            escalated_at.setdefault(int(r.target.removeprefix("alert:")), parse_utc(r.at))
    db.dispose()
    to_store, to_webhook = [], []
    for row in rows:
        due = parse_utc(row.received_at) + timedelta(minutes=5)
        if row.id in escalated_at:
            to_store.append((escalated_at[row.id] - due).total_seconds() / speed)
        if row.id in received:
            due_real = clock.anchor + (due - clock.start).total_seconds() / speed
            to_webhook.append(received[row.id] - due_real)
    if len(to_store) < alerts or len(to_webhook) < alerts:
        raise SystemExit(f"only {len(to_store)} escalations and {len(to_webhook)} webhooks "
                         f"of {alerts}")
    to_store.sort()
    to_webhook.sort()
    return {"alerts": alerts,
            "store_median_ms": statistics.median(to_store) * 1000,
            "store_p99_ms": _percentile(to_store, 0.99) * 1000,
            "hook_median_ms": statistics.median(to_webhook) * 1000,
            "hook_p99_ms": _percentile(to_webhook, 0.99) * 1000}


def _row(r: dict[str, Any]) -> str:
    return (f"| {r['alerts']} | {r['store_median_ms']:.0f} | {r['store_p99_ms']:.0f} | "
            f"{r['hook_median_ms']:.0f} | {r['hook_p99_ms']:.0f} |")


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="homecall-bench-escalation-") as tmp:
        r = measure(Path(tmp), args.alerts, args.speed, args.spacing_s)
    print(f"escalation due -> stored: median {r['store_median_ms']:.0f} ms, p99 "
          f"{r['store_p99_ms']:.0f} ms; -> webhook received: median {r['hook_median_ms']:.0f} "
          f"ms, p99 {r['hook_p99_ms']:.0f} ms ({r['alerts']} alerts)", flush=True)
    if args.write_docs:
        command = (f"homecall bench escalation --alerts {args.alerts} --speed {args.speed:g} "
                   f"--spacing-s {args.spacing_s:g} --write-docs")
        write_section(DOCS, SECTION, f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
other work was running on the machine).

Central's store (SQLite) and Supervisor on APScheduler under a simulated clock at
{args.speed:g}x; {args.alerts} critical alerts nobody acknowledges, each due for escalation 5
simulated minutes after central stored it; the organisation's webhook posts to a local
receiver. Real time from the due moment to the escalation stored (its audit entry) and to
the receiver holding the signed `alert.escalated` delivery.

| alerts | due -> stored, median ms | p99 ms | due -> webhook received, median ms | p99 ms |
|---:|---:|---:|---:|---:|
{_row(r)}
""")
    return 0
