"""``homecall bench sd-writes``: what a gateway writes to its storage (the SD card on a
Raspberry Pi) per day: idle, and per journalled event, so a household's day can be read off.

Real processes: Mosquitto, central, and the gateway (journal ``synchronous=FULL``) reading the
simulator's RDM6300 on a pty, with a plan in force. The gateway's ``write_bytes`` from
``/proc/PID/io`` (bytes it caused to be sent to the block device: its journal, the WAL, the
checkpoints, its logs) is read over an idle spell, then over ``--events`` taps of distinct
unknown fobs (one journalled event each, sent to central and acked, as any event is) spaced
``--spacing`` seconds apart. A household with no visits writes the idle figure; a typical one
adds ``--typical-events`` events a day (four visits' arrivals and departures, the door and
key-safe openings and closings around them, the odd alert). With ``--write-docs`` the figures
go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## gateway writes to its storage per day"
DAY_S = 86_400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--events", type=int, default=30, help="taps measured one by one")
    parser.add_argument("--spacing", type=float, default=2.0, help="seconds between taps")
    parser.add_argument("--typical-events", type=int, default=40,
                        help="events a typical household's day journals")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _write_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError(f"no write_bytes in /proc/{pid}/io")


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    from firmware_sim.em4100 import SimulatedRfidReader, encode_frame
    from homecall.clock import ScaledClock
    from homecall.plan import DocumentCarer, PlanDocument
    from orchestration.stack import Stack

    gateway_id = "gw-bench-sd"
    work = Path(tempfile.mkdtemp(prefix="homecall-sd-"))
    reader = SimulatedRfidReader(str(work / "dev" / "rfid"))
    reader.start()
    try:
        # the gateway's default heartbeat (10 s): the idle figure is the deployed one
        with Stack(work / "stack", ScaledClock(datetime.now(UTC), 1.0).spec(),
                   heartbeat_s=10.0) as stack:
            stack.start_broker()
            stack.start_central()
            stack.upload_plan(PlanDocument(
                gateway=gateway_id, service_users=("su-1",),
                carers=(DocumentCarer(id="c-1", tags=("em4100:FFFFFFFFFF",)),)))
            stack.add_gateway(gateway_id, {"rfid": Path(reader.link_path)})
            stack.start_gateway(gateway_id)
            if not stack.wait_delivered(gateway_id, timeout_s=60):
                raise RuntimeError("the gateway never came online")
            process = stack.gateways[gateway_id].process
            assert process is not None
            time.sleep(15.0)  # start-up writes (plan, first snapshot) are over
            idle0, t0 = _write_bytes(process.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle1, t1 = _write_bytes(process.pid), time.monotonic()
            idle_rate = (idle1 - idle0) / (t1 - t0)
            for i in range(args.events):
                frame = encode_frame(f"{0xE000000000 + i:010X}")
                reader.send_raw(frame)
                time.sleep(0.05)  # the reader repeats the code while the fob is there
                reader.send_raw(frame)
                time.sleep(args.spacing)
            if not stack.wait_delivered(gateway_id, timeout_s=60):
                raise RuntimeError("the taps were not all delivered")
            time.sleep(5.0)  # the last ack's delete and any checkpoint
            taps1, t2 = _write_bytes(process.pid), time.monotonic()
    finally:
        reader.stop()
    per_event = (taps1 - idle1 - idle_rate * (t2 - t1)) / args.events
    idle_day = idle_rate * DAY_S
    return {"idle_seconds": round(t1 - t0, 1), "idle_bytes": idle1 - idle0,
            "idle_bytes_per_day": idle_day, "per_event_bytes": per_event,
            "typical_day_bytes": idle_day + per_event * args.typical_events}


def run(args: argparse.Namespace) -> int:
    result = _measure(args)
    mb = 1024 * 1024
    print(f"idle: {result['idle_bytes']} bytes in {result['idle_seconds']} s = "
          f"{result['idle_bytes_per_day'] / mb:.2f} MB/day; per event "
          f"{result['per_event_bytes'] / 1024:.1f} KB; typical day "
          f"({args.typical_events} events) {result['typical_day_bytes'] / mb:.2f} MB")
    if args.write_docs:
        command = "homecall bench sd-writes " + " ".join(sys.argv[3:])
        per_event_kb = result["per_event_bytes"] / 1024
        text = f"""{SECTION}

`{command.strip()}` ({platform.machine()}, {os.cpu_count()} CPUs, Python
{platform.python_version()}, journal `synchronous=FULL`, heartbeat 10 s).

The gateway's `write_bytes` (`/proc/PID/io`: its journal, WAL, checkpoints and log) over
{result['idle_seconds']} s idle with a plan in force, then over {args.events} taps of distinct
unknown fobs {args.spacing:g} s apart (one journalled event each, delivered and acked).

| household | written per day |
| --- | ---: |
| no visits (idle: heartbeats, no events) | {result['idle_bytes_per_day'] / mb:.2f} MB |
| typical ({args.typical_events} events a day) | {result['typical_day_bytes'] / mb:.2f} MB |
| each event (its commit, its ack's delete, checkpoints) | {per_event_kb:.1f} KB |

Idle, the gateway journals nothing (a heartbeat is published, not stored); what it writes is
the device-state file for `homecall gateway devices`, rewritten when a device's state changes
and otherwise once a minute. Each event costs
its fsynced commit (WAL frames for the event row, its index and the counters), the delete
when central acks it (committed without an fsync, written with the next checkpoint or
commit) and its share of checkpoints back into the database file.
"""
        write_section(DOCS, SECTION, text)
    return 0
