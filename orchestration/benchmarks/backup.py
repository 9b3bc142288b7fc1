"""``homecall bench backup``: from a visit's deadline to central's backup alert stored.

Central's real store (SQLite, as central runs it) and its real :class:`Supervisor` on
APScheduler, under a simulated clock running ``--speed`` times real time. ``--gateways``
gateways are offline (their last-will received); each has one visit whose window closes at
a staggered time. The Supervisor wakes at each deadline by itself and raises ``visit_late``
(``raised_by`` central). For each alert, ``received_at`` (when central stored it) minus its
deadline, divided by the speed, is the real delay staff would see. Median and p99 are
printed and, with ``--write-docs``, written into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from orchestration.benchmarks import DOCS, write_section

SECTION = "## central backup alerts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateways", type=int, default=40)
    parser.add_argument("--speed", type=float, default=60.0, help="simulated clock rate")
    parser.add_argument("--spacing-s", type=float, default=30.0,
                        help="simulated seconds between one gateway's deadline and the next")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def measure(workdir: Path, gateways: int, speed: float, spacing_s: float) -> dict[str, Any]:
    import json

    from central.db.engine import Database
    from central.db.migrate import upgrade
    from central.store import Store
    from central.supervision.runner import Supervisor
    from central.views import list_alerts
    from homecall.clock import ScaledClock, parse_utc
    from homecall.plan import PlanDocument

    zone = ZoneInfo("Europe/London")
    start = datetime.now(UTC).replace(microsecond=0)
    clock = ScaledClock(start, speed)
    db = Database(f"sqlite:///{workdir / 'central.db'}")
    upgrade(db)
    store = Store(db)
    first_deadline = start + timedelta(minutes=3)
    for i in range(gateways):
        gateway_id = f"gw-backup-{i:03d}"
        closes = first_deadline + timedelta(seconds=i * spacing_s)
        local = closes.astimezone(zone).replace(tzinfo=None)
        store.save_plan(PlanDocument.parse({
            "gateway": gateway_id, "service_users": ["su-1"],
            "visits": [{"id": "v-1", "service_user": "su-1",
                        "start": (local - timedelta(minutes=1)).isoformat(),
                        "duration_min": 30,
                        "window": [(local - timedelta(minutes=2)).isoformat(),
                                   local.isoformat()]}],
        }), start, "bench")
        status = json.dumps({"v": 1, "gateway_id": gateway_id, "state": "offline"})
        store.record_status(gateway_id, status, "offline", start)
    supervisor = Supervisor(store, clock)
    supervisor.start()
    last = first_deadline + timedelta(seconds=(gateways - 1) * spacing_s)
    try:
        time.sleep(max(0.0, clock.real_seconds_until(last)))
        limit = time.monotonic() + 60
        while time.monotonic() < limit:
            late = [a for a in list_alerts(store) if a["type"] == "visit_late"]
            if len(late) >= gateways:
                break
            time.sleep(0.2)
    finally:
        supervisor.stop()
    delays = sorted(
        (parse_utc(a["received_at"]) - parse_utc(a["raised_at"])).total_seconds() / speed
        for a in late
    )
    db.dispose()
    if len(delays) < gateways:
        raise SystemExit(f"only {len(delays)} of {gateways} backup alerts were raised")
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    return {"alerts": len(delays), "median_ms": statistics.median(delays) * 1000,
            "p99_ms": p99 * 1000, "max_ms": delays[-1] * 1000, "runs": supervisor.runs}


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="homecall-bench-backup-") as tmp:
        result = measure(Path(tmp), args.gateways, args.speed, args.spacing_s)
    print(f"deadline -> backup alert stored: median {result['median_ms']:.0f} ms, "
          f"p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms "
          f"({result['alerts']} alerts, {result['runs']} supervision runs)", flush=True)
    if args.write_docs:
        command = (f"homecall bench backup --gateways {args.gateways} --speed {args.speed:g} "
                   f"--spacing-s {args.spacing_s:g} --write-docs")
        write_section(DOCS, SECTION, f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
other work was running on the machine).

Central's store (SQLite) and its Supervisor on APScheduler under a simulated clock at
{args.speed:g}x; {args.gateways} gateways are offline, each with one visit whose window
closes {args.spacing_s:g} simulated seconds after the previous one. Each figure is the real
time from a window's close to central's `visit_late` (`raised_by` central) being stored:
(`received_at` - deadline) / speed. Every run rebuilds each household from the database.

| alerts | median ms | p99 ms | max ms |
|---:|---:|---:|---:|
| {result['alerts']} | {result['median_ms']:.0f} | {result['p99_ms']:.0f} | {result['max_ms']:.0f} |
""")
    return 0
