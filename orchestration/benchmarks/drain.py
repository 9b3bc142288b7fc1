"""``homecall bench drain``: how soon a gateway's backlog reaches the broker after a broker
outage, with the outbox's reconnect back-off capped low while events wait (the default, 2 s)
and, for comparison, capped only by ``--reconnect-max`` (60 s: the behaviour before).

Real processes: Mosquitto, central, the gateway (journal ``synchronous=FULL``) reading the
simulator's RDM6300 on a pty. For each outage length the broker is stopped, ``--events``
distinct fobs are tapped during the outage, the broker is started again, and the time from
its start until a subscriber has every one of those events is measured (the listener
reconnects within 0.2 s, so the figure is the gateway's). Results are printed and, with
``--write-docs``, written into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section

SECTION = "## broker outage: drain time"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=200, help="taps during each outage")
    parser.add_argument("--outage", type=float, action="append", metavar="S",
                        help="outage length in seconds (repeatable; default 10 and 30)")
    parser.add_argument("--repeat", type=int, default=2, help="outages of each length")
    parser.add_argument("--waiting-max", type=float, default=2.0,
                        help="the gateway's --reconnect-waiting-max under test")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the run with the back-off capped only by --reconnect-max")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _measure(waiting_max: float, outages: list[float], events: int, repeat: int,
             salt_wait_s: float = 30.0) -> dict[float, list[float]]:
    from datetime import UTC, datetime

    from firmware_sim.em4100 import SimulatedRfidReader, encode_frame
    from homecall.clock import ScaledClock
    from homecall.plan import DocumentCarer, PlanDocument
    from homecall.tags import redact
    from orchestration.benchmarks.latency import _household_salt, _Listener
    from orchestration.stack import Stack

    gateway_id = "gw-bench-drain"
    work = Path(tempfile.mkdtemp(prefix="homecall-drain-"))
    reader = SimulatedRfidReader(str(work / "dev" / "rfid"))
    reader.start()
    clock = ScaledClock(datetime.now(UTC), 1.0)
    counter = iter(range(1, 10**9))
    drained: dict[float, list[float]] = {o: [] for o in outages}
    try:
        with Stack(work / "stack", clock.spec(), heartbeat_s=5.0) as stack:
            stack.start_broker()
            stack.start_central()
            stack.upload_plan(PlanDocument(
                gateway=gateway_id, service_users=("su-1",),
                carers=(DocumentCarer(id="c-1", tags=("em4100:FFFFFFFFFF",)),)))
            stack.add_gateway(gateway_id, {"rfid": Path(reader.link_path)}, extra_args=[
                "--reconnect-max", "60", "--reconnect-waiting-max", str(waiting_max)])
            stack.start_gateway(gateway_id)
            salt = _household_salt(stack.gateways[gateway_id].journal, salt_wait_s)
            listener = _Listener(stack.broker, gateway_id)
            listener.client.reconnect_delay_set(min_delay=0.1, max_delay=0.2)  # type: ignore[arg-type]
            if not stack.wait_delivered(gateway_id, timeout_s=30):
                raise RuntimeError("the gateway never came online")
            for outage in outages:
                for _ in range(repeat):
                    tags = [f"em4100:{next(counter):010X}" for _ in range(events)]
                    stack.broker.stop()
                    started = time.monotonic()
                    for tag in tags:
                        reader.send_raw(encode_frame(tag.split(":")[1]))
                        time.sleep(min(0.01, outage / (2 * events)))
                    time.sleep(max(0.0, outage - (time.monotonic() - started)))
                    stack.broker.start()
                    back = time.monotonic()
                    wanted = {redact(t, salt) for t in tags}
                    got = listener.wait_all(wanted, back + 180)
                    if got != wanted:
                        raise RuntimeError(f"{len(wanted - got)} events never arrived")
                    drained[outage].append(time.monotonic() - back)
                    stack.wait_delivered(gateway_id, timeout_s=120)
            listener.close()
    finally:
        reader.stop()
    return drained


def run(args: argparse.Namespace) -> int:
    import os
    import platform

    outages = args.outage or [10.0, 30.0]
    runs = [(f"capped at {args.waiting_max:g} s while events wait", args.waiting_max)]
    if not args.no_compare:
        runs.append(("capped only by --reconnect-max 60 s (before)", 60.0))
    rows = []
    for label, waiting_max in runs:
        drained = _measure(waiting_max, outages, args.events, args.repeat)
        for outage, times in drained.items():
            rows.append(f"| {label} | {outage:g} s | {args.events} | "
                        f"{statistics.median(times):.2f} s | {max(times):.2f} s |")
    command = "homecall bench drain " + " ".join(sys.argv[3:] if len(sys.argv) > 3 else [])
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    text = "\n".join([
        SECTION, "",
        f"Command: `{command.strip()}` (measured {time.strftime('%Y-%m-%d')}, {machine}).",
        "Time from the broker's start until a subscriber holds every event tapped during the",
        f"outage ({args.repeat} outages of each length; real processes, journal fsynced).", "",
        "| reconnect back-off | outage | events | drained, median | max |",
        "| --- | --- | --- | --- | --- |",
        *rows, "",
    ])
    print(text)
    if args.write_docs:
        write_section(DOCS, SECTION, text)
    return 0


__all__: list[Any] = ["add_arguments", "run"]
