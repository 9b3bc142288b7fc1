"""``homecall bench replay``: what a week-long outage costs the gateway and how fast it heals.

Three measurements, with real processes (Mosquitto, central, gateway) and real SQLite files:

* **realistic week**: a household's 7-day outage (4 calls a day with taps, key-safe and door
  changes, an hourly battery reading from the hub, some late/missed-call alerts) written
  through :class:`gateway.delivery.journal.Journal` exactly as the daemon writes it; the
  journal file's size and bytes per event, then the gateway started on it and the time until
  central holds every event;
* **replay rate**: the same with a stress-sized backlog (``--events``, default 20,000), in
  events/s from gateway start until central's contiguous seq reaches the journal head;
* **gateway RSS** (``/proc/PID/status`` VmRSS): peak during the replay and steady after it;
* **bytes written per event** in steady state: the gateway fed battery readings by the
  simulated sensor hub at ``--rate`` per second, ``/proc/PID/io`` ``write_bytes`` (block
  layer, incl. WAL and checkpoints; ``wchar`` when the kernel does not account block I/O)
  divided by the events journalled.

Results are printed; ``--write-docs`` appends/replaces the ``## delivery`` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## delivery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20000,
                        help="backlog size for the replay-rate run")
    parser.add_argument("--rate", type=float, default=50.0,
                        help="hub readings/s for the steady-state bytes-per-event run")
    parser.add_argument("--steady-s", type=float, default=15.0,
                        help="seconds of steady-state load")
    parser.add_argument("--workdir", type=Path, help="keep files here (default: a temp dir)")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the results into docs/benchmarks.md")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _io(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


def _week_events(start: datetime) -> list[Any]:
    """A realistic household's week, as the daemon would journal it."""
    from gateway.delivery.journal import NewEvent
    from homecall.wire import ALERT_SEVERITY, EventType

    events: list[NewEvent] = []
    mono = 0.0
    for day in range(7):
        base = start + timedelta(days=day)
        for hour in range(24):
            at = base + timedelta(hours=hour)
            events.append(NewEvent(EventType.BATTERY, at, mono, data={"mv": 3900 - day}))
        for n, (hour, minute) in enumerate(((8, 0), (12, 30), (17, 0), (21, 0))):
            visit = f"v-d{day}-c{n}"
            at = base + timedelta(hours=hour, minutes=minute)
            if (day, n) in ((1, 2), (3, 0), (5, 3)):
                for kind, late in ((EventType.VISIT_LATE, 30), (EventType.VISIT_MISSED, 90)):
                    events.append(NewEvent(kind, at + timedelta(minutes=late), mono,
                                           severity=ALERT_SEVERITY[kind], visit_id=visit,
                                           service_user_id="su-1",
                                           data={"planned_start": at.isoformat()}))
                continue
            for offset, kind, data in (
                (0, EventType.KEYSAFE, {"sensor": "keysafe", "state": "open"}),
                (1, EventType.DOOR, {"sensor": "front", "state": "open"}),
                (3, EventType.KEYSAFE, {"sensor": "keysafe", "state": "closed"}),
                (4, EventType.DOOR, {"sensor": "front", "state": "closed"}),
            ):
                events.append(NewEvent(kind, at + timedelta(minutes=offset), mono, data=data))
            events.append(NewEvent(EventType.ARRIVAL, at + timedelta(minutes=5), mono,
                                   visit_id=visit, service_user_id="su-1", carer_id="c-1",
                                   data={"punctuality": "on_time", "minutes_outside_window": 0}))
            events.append(NewEvent(EventType.DEPARTURE, at + timedelta(minutes=36), mono,
                                   visit_id=visit, service_user_id="su-1", carer_id="c-1",
                                   data={"arrived_at": (at + timedelta(minutes=5)).isoformat(),
                                         "actual_min": 31, "planned_min": 30}))
            for offset, kind, state in ((37, EventType.DOOR, "open"),
                                        (38, EventType.DOOR, "closed"),
                                        (39, EventType.KEYSAFE, "open"),
                                        (40, EventType.KEYSAFE, "closed")):
                sensor = "front" if kind is EventType.DOOR else "keysafe"
                events.append(NewEvent(kind, at + timedelta(minutes=offset), mono,
                                       data={"sensor": sensor, "state": state}))
    return events


def _write_journal(path: Path, gateway_id: str, events: list[Any], batch: int) -> None:
    from gateway.delivery.journal import Journal

    journal = Journal(path, gateway_id, "bench-boot")
    for i in range(0, len(events), batch):
        journal.append(events[i:i + batch], clock_ok=True)
    journal.close()


def _replay(workdir: Path, gateway_id: str, events: list[Any], batch: int) -> dict[str, Any]:
    """Journal ``events`` offline, then start the gateway on it; time the drain."""
    from orchestration.stack import Stack

    stack = Stack(workdir / gateway_id, "system", heartbeat_s=0.5)
    try:
        stack.start_broker()
        stack.start_central()
        gateway = stack.add_gateway(gateway_id, {})
        _write_journal(gateway.journal, gateway_id, events, batch)
        size = sum(p.stat().st_size for p in gateway.journal.parent.glob("journal.db*"))
        conn = sqlite3.connect(gateway.journal)
        head = int(conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])
        conn.close()
        started = time.monotonic()
        stack.start_gateway(gateway_id)
        assert gateway.process is not None
        peak = 0
        while True:
            peak = max(peak, _rss_kib(gateway.process.pid))
            view = stack.gateway_view(gateway_id) or {}
            if int(view.get("contiguous_seq") or 0) >= head:
                break
            if time.monotonic() - started > 600:
                raise RuntimeError("replay did not finish in 10 minutes")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        time.sleep(3.0)
        steady = _rss_kib(gateway.process.pid)
        return {"events": len(events), "journal_bytes": size,
                "bytes_per_event": size / max(1, len(events)), "replay_s": elapsed,
                "events_per_s": len(events) / elapsed, "rss_peak_kib": peak,
                "rss_steady_kib": steady}
    finally:
        stack.stop()


def _steady(workdir: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Battery readings from the simulated hub at ``rate``/s: disk bytes written per event."""
    from firmware_sim.hub import SimulatedHub
    from orchestration.stack import Stack

    stack = Stack(workdir / "steady", "system", heartbeat_s=1.0)
    hub = SimulatedHub(str(workdir / "steady-dev" / "hub"), heartbeat_s=1.0)
    (workdir / "steady-dev").mkdir(parents=True, exist_ok=True)
    hub.start()
    try:
        stack.start_broker()
        stack.start_central()
        gateway = stack.add_gateway("gw-bench-steady", {"hub": Path(hub.link_path)})
        stack.start_gateway("gw-bench-steady")
        assert gateway.process is not None
        time.sleep(4.0)
        pid = gateway.process.pid

        def head() -> int:
            conn = sqlite3.connect(f"file:{gateway.journal}?mode=ro", uri=True)
            try:
                return int(conn.execute(
                    "SELECT value FROM meta WHERE key='last_seq'").fetchone()[0])
            finally:
                conn.close()

        seq0, io0 = head(), _io(pid)
        stop = threading.Event()

        def feed() -> None:
            i = 0
            while not stop.wait(1.0 / rate):
                hub.battery(3400 + i % 500)
                i += 1

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        rss = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rss.append(_rss_kib(pid))
            time.sleep(0.5)
        stop.set()
        thread.join()
        time.sleep(1.0)
        seq1, io1 = head(), _io(pid)
        events = max(1, seq1 - seq0)
        block = io1.get("write_bytes", 0) - io0.get("write_bytes", 0)
        chars = io1.get("wchar", 0) - io0.get("wchar", 0)
        return {"events": events, "rate": rate, "seconds": seconds,
                "write_bytes_per_event": block / events if block else None,
                "wchar_per_event": chars / events, "rss_kib": max(rss) if rss else 0}
    finally:
        stack.stop()
        hub.stop()


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="homecall-bench-replay-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    week = _week_events(start)
    print(f"realistic week: {len(week)} events", flush=True)
    realistic = _replay(workdir, "gw-bench-week", week, batch=1)
    stress_events = [
        *(week * (args.events // len(week) + 1))
    ][: args.events]
    print(f"stress backlog: {len(stress_events)} events", flush=True)
    stress = _replay(workdir, "gw-bench-stress", stress_events, batch=1)
    steady = _steady(workdir, args.rate, args.steady_s)
    results = {"realistic_week": realistic, "stress": stress, "steady": steady}
    print(json.dumps(results, indent=2))
    if args.write_docs:
        _write_docs(results, args)
    return 0


def _write_docs(results: dict[str, Any], args: argparse.Namespace) -> None:
    week, stress, steady = results["realistic_week"], results["stress"], results["steady"]
    per_event = steady["write_bytes_per_event"]
    command = (f"homecall bench replay --events {args.events} --rate {args.rate:g} "
               f"--steady-s {args.steady_s:g} --write-docs")
    written = f"{per_event:,.0f} B" if per_event else "n/a (not accounted here)"
    rows = [
        ("realistic household week (4 calls/day, taps, key safe, door, hourly battery, "
         "6 alerts)", f"{week['events']:,} events"),
        ("journal size after that 7-day outage (db + WAL)",
         f"{week['journal_bytes'] / 1024:,.0f} KiB"),
        ("journal bytes per event (file size / events)", f"{week['bytes_per_event']:,.0f} B"),
        ("realistic week delivered after reconnect", f"{week['replay_s']:.1f} s"),
        (f"replay rate, {stress['events']:,}-event backlog",
         f"{stress['events_per_s']:,.0f} events/s"),
        ("gateway RSS, peak during that replay", f"{stress['rss_peak_kib'] / 1024:.1f} MiB"),
        ("gateway RSS, steady after the replay", f"{stress['rss_steady_kib'] / 1024:.1f} MiB"),
        (f"gateway RSS under {steady['rate']:g} events/s", f"{steady['rss_kib'] / 1024:.1f} MiB"),
        (f"disk bytes written per event at {steady['rate']:g} events/s "
         "(/proc io write_bytes)", written),
        ("bytes passed to write() per event (wchar: journal, WAL and the gateway's log)",
         f"{steady['wchar_per_event']:,.0f} B"),
    ]
    machine = f"{platform.machine()}, Python {platform.python_version()}"
    lines = [
        SECTION, "",
        "What a 7-day outage costs the gateway, and how fast it heals (real Mosquitto, "
        "central and gateway processes on loopback; journal `synchronous=FULL`; each event "
        "journalled in its own transaction, as the daemon does for isolated events). "
        "See docs/delivery.md.", "",
        f"Command: `{command}`  ",
        f"Machine: {machine}, {datetime.now(UTC):%Y-%m-%d}", "",
        "| measurement | value |", "| --- | ---: |",
        *(f"| {name} | {value} |" for name, value in rows), "",
    ]
    write_section(DOCS, SECTION, "\n".join(lines))
    print(f"wrote {DOCS}", file=sys.stderr)
