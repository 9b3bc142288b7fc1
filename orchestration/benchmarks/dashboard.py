"""``homecall bench dashboard``: from central storing an alert to it on the desk's screen.

Central runs in this process (uvicorn, SQLite, the system clock) with a logged-in monitor's
alert board open in Debian's chromium (Playwright). The bench stores ``--alerts`` alert
events one after another through central's own store (the same call ingest makes) and
notes the wall time each commit returned; a MutationObserver in the page notes the wall time
each new alert row appeared. The difference is what staff wait: the live stream's poll,
the row fragment's fetch and the browser's render. Median and p99 are printed and, with
``--write-docs``, written into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## desk: alert stored -> on screen"
OBSERVER = """() => {
  window.seenAt = {};
  const board = document.getElementById('board');
  const note = () => board.querySelectorAll('li.alert').forEach(li => {
    const id = li.dataset.alertId;
    if (!(id in window.seenAt)) { window.seenAt[id] = Date.now(); }
  });
  note();
  new MutationObserver(note).observe(board, {childList: true, subtree: true});
}"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--gap-s", type=float, default=1.5,
                        help="real seconds between one alert and the next")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def measure(workdir: Path, alerts: int, gap_s: float) -> dict[str, Any]:
    import uvicorn
    from argon2 import PasswordHasher
    from playwright.sync_api import sync_playwright

    import central.auth.service as auth_service
    from central.app import create_app
    from central.people.models import HouseholdIn, OrganisationIn
    from central.people.repository import People
    from central.settings import CentralSettings
    from central.store import Store
    from gateway.delivery.journal import Journal, NewEvent
    from homecall.clock import SystemClock
    from homecall.wire import EventType, Severity

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    auth_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    clock = SystemClock()
    gateway_id = "gw-bench-desk"
    settings = CentralSettings(database=f"sqlite:///{workdir / 'central.db'}",
                               supervise=False)
    app = create_app(settings, clock=clock, with_ingest=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    people = People(app.state.db, clock)
    org = people.create_organisation(OrganisationIn(name="Bench Org"), "bench")
    people.create_household(HouseholdIn(gateway_id=gateway_id, address="1 Bench Road"),
                            org.id, "bench")
    auth_service.Accounts(app.state.db, clock).create_user("bench-monitor", "bench password",
                                                           "monitor", org.id)
    store: Store = app.state.store
    journal = Journal(workdir / "gw.db", gateway_id, "boot-1", synchronous="NORMAL")
    stored_at: dict[int, float] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium,
                                                 args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/login")
            page.get_by_label("Username").fill("bench-monitor")
            page.get_by_label("Password").fill("bench password")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector("body[data-live='yes']")
            page.evaluate(OBSERVER)
            for i in range(alerts):
                [event] = journal.append([NewEvent(
                    EventType.UNKNOWN_TAG, clock.now(), float(i), severity=Severity.MEDIUM,
                    data={"tag": f"em4100:#{i:012x}"})], clock_ok=True)
                store.store_events([(gateway_id, event)], clock.now())
                stored_at[event.seq] = time.time()
                time.sleep(gap_s)
            page.wait_for_function(f"Object.keys(window.seenAt).length >= {alerts}",
                                   timeout=60_000)
            seen: dict[str, float] = page.evaluate("window.seenAt")
            browser.close()
    finally:
        journal.close()
        server.should_exit = True
        thread.join(timeout=15)
    rows = list_alerts_by_seq(store, gateway_id)
    delays = sorted(seen[str(alert_id)] / 1000 - stored_at[seq]
                    for seq, alert_id in rows.items() if str(alert_id) in seen)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    return {"alerts": len(delays), "median_ms": statistics.median(delays) * 1000,
            "p99_ms": p99 * 1000, "max_ms": delays[-1] * 1000}


def list_alerts_by_seq(store: Any, gateway_id: str) -> dict[int, int]:
    """alert id by the seq of the event that raised it."""
    import sqlalchemy as sa

    from central.db.tables import alerts

    with store.db.read() as conn:
        return {int(r.event_seq): int(r.id) for r in conn.execute(
            sa.select(alerts.c.id, alerts.c.event_seq).where(
                alerts.c.gateway_id == gateway_id))}


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="homecall-bench-desk-") as tmp:
        result = measure(Path(tmp), args.alerts, args.gap_s)
    print(f"alert stored -> on the desk's screen: median {result['median_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms "
          f"({result['alerts']} alerts)", flush=True)
    if args.write_docs:
        command = (f"homecall bench dashboard --alerts {args.alerts} --gap-s {args.gap_s:g} "
                   "--write-docs")
        write_section(DOCS, SECTION, f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},
Debian chromium headless; other work was running on the machine).

Central in-process (uvicorn, SQLite) with a monitor's alert board open in chromium; each
figure is the wall time from central's store committing an alert to a MutationObserver in
the page seeing its row. The live stream polls the store twice a second, then the page
fetches the board's rows; that poll is most of the figure.

| alerts | median ms | p99 ms | max ms |
|---:|---:|---:|---:|
| {result['alerts']} | {result['median_ms']:.0f} | {result['p99_ms']:.0f} | {result['max_ms']:.0f} |
""")
    return 0
