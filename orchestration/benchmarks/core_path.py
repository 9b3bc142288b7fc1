"""``homecall bench core-path``: the CPU one tap costs on the gateway's core path, no threads.

A real :class:`~gateway.daemon.GatewayDaemon` is built (not run) on a fresh journal with a
plan file holding one carer's fob; then ``--taps`` distinct unknown fobs are tapped one at a
time through the core's own calls: the observation becomes a core input, the engine host
steps and commits it (the fsynced journal transaction), the sealed event is serialised as
the outbox would publish it, and central's ack deletes it (:meth:`Journal.mark_acked`).
Reported: user and system CPU and wall time per tap from ``os.times()``, and how many
collections Python's cyclic collector ran meanwhile. Compare with the running gateway's core
thread (``/proc/<pid>/task/*/stat``) to see what the threads and paho add.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--taps", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the journal lives (default: a temporary folder; its disk "
                             "decides what the fsync costs)")


def run(args: argparse.Namespace) -> int:
    from gateway.daemon import GatewayConfig, GatewayDaemon
    from homecall.clock import SystemClock
    from homecall.observations import TagRead
    from homecall.plan import DocumentCarer, PlanDocument, Visit

    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="homecall-bench-core-", dir=args.dir) as tmp:
        folder = Path(tmp)
        today = clock.now().replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        visits = tuple(Visit(id=f"v-{day}-{hour}", service_user="su-1",
                             start=today + timedelta(days=day, hours=hour), duration_min=30,
                             carers=("c-1",)) for day in range(3) for hour in (8, 12, 17, 21))
        plan = PlanDocument(gateway="gw-bench-core", service_users=("su-1",),
                            carers=(DocumentCarer(id="c-1", tags=("em4100:FFFFFFFFFF",)),),
                            visits=visits)
        (folder / "plan.json").write_text(plan.model_dump_json())
        daemon = GatewayDaemon(GatewayConfig(
            gateway_id="gw-bench-core", journal_path=folder / "journal.db",
            plan_file=folder / "plan.json", clock_ok="yes"), clock)
        daemon.core.commit(daemon._startup_inputs())
        collections = [0]

        def count(phase: str, info: dict[str, int]) -> None:
            collections[0] += phase == "start"
        gc.callbacks.append(count)
        before, started = os.times(), time.perf_counter()
        for n in range(args.taps):
            tap = TagRead(tag=f"em4100:{0x1000000000 + n:010X}", at=clock.now(), source="rfid")
            daemon.core.commit([daemon.core._observation(tap)])
            for envelope in daemon.host.take_fresh():
                envelope.to_bytes()
            daemon.journal.mark_acked(daemon.journal.last_seq)
        after, elapsed = os.times(), time.perf_counter() - started
        gc.callbacks.remove(count)
        daemon.journal.close()
    taps = args.taps
    user_ms = 1e3 * (after.user - before.user) / taps
    system_ms = 1e3 * (after.system - before.system) / taps
    print(f"core path, {taps} taps one at a time: user {user_ms:.3f} ms, system "
          f"{system_ms:.3f} ms, wall {1e3 * elapsed / taps:.3f} ms a tap; cyclic "
          f"collections: {collections[0]}", flush=True)
    return 0
