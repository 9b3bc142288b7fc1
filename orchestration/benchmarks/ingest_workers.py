"""``homecall bench ingest-workers``: events/s ingested by 1, 2 and 4 ``homecall central
ingest`` processes sharing the broker's subscription and writing to one PostgreSQL (and one
on SQLite, for comparison).

For each worker count: a fresh database, a real Mosquitto (per-login publish rate lifted:
this measures central), N worker processes (each its own client id in the
``$share/central`` group), then ``--gateways`` clients each publishing its hash-chained
events (QoS 1) as fast as the broker takes them; timed from the first publish until every
gateway's ack covers its last seq (central acks after its commit). Results are printed and,
with ``--write-docs``, written into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section
from orchestration.benchmarks.ingest import _make_events, publish_and_time

SECTION = "## central ingest: N worker processes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, action="append",
                        help="worker counts to measure on PostgreSQL (default 1, 2, 4)")
    parser.add_argument("--events", type=int, default=40000, help="events in total")
    parser.add_argument("--gateways", type=int, default=40)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def _start_workers(url: str, broker: Any, count: int, stack: ExitStack) -> None:
    from orchestration.broker import CENTRAL_USER

    secret = broker.credentials_file(CENTRAL_USER)
    for i in range(count):
        worker = subprocess.Popen(
            [sys.executable, "-m", "homecall.cli", "central", "ingest", "--db", url,
             "--mqtt-port", str(broker.port), "--mqtt-user", CENTRAL_USER,
             "--mqtt-password-file", str(secret), "--mqtt-client-id", f"central-bench-{i}"],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        stack.callback(_stop, worker)
        assert worker.stderr is not None
        deadline = time.monotonic() + 60
        for line in worker.stderr:  # until it is on the broker and subscribed
            if "central connected to broker" in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest worker {i} did not connect")
        threading.Thread(target=lambda s=worker.stderr: [None for _ in s], daemon=True).start()
    time.sleep(1.0)  # the subscriptions' SUBACKs


def _stop(worker: subprocess.Popen[str]) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def measure(url: str, workdir: Path, payloads: dict[str, list[bytes]],
            workers: int) -> dict[str, Any]:
    from central.db.engine import Database
    from central.db.migrate import upgrade
    from orchestration.broker import MosquittoBroker

    per_gateway = len(next(iter(payloads.values())))
    with ExitStack() as stack:
        broker = stack.enter_context(MosquittoBroker(workdir / "broker", publish_rate_per_s=0))
        for gateway_id in payloads:
            broker.add_user(gateway_id)
        db = Database(url)
        upgrade(db)  # before the workers start (they would race to create the schema)
        db.dispose()
        _start_workers(url, broker, workers, stack)
        before = _cpu_times()
        elapsed = publish_and_time(broker, payloads, stack)
        after = _cpu_times()
    total = per_gateway * len(payloads)
    busy = after[0] - before[0]
    whole = (after[1] - before[1]) or 1
    return {"events": total, "seconds": elapsed, "rate": total / elapsed,
            "machine_busy_pct": 100.0 * busy / whole}


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (every process: broker, publishers,
    database and workers), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return total - idle, total


def run(args: argparse.Namespace) -> int:
    counts = args.workers or [1, 2, 4]
    runs: list[tuple[str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="homecall-bench-workers-") as tmp, \
            ExitStack() as stack:
        gateway_ids = [f"gw-wk-{i:03d}" for i in range(args.gateways)]
        payloads = _make_events(Path(tmp), gateway_ids, args.events // args.gateways)
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests.support.postgres import PrivatePostgres

        server = PrivatePostgres().start()
        stack.callback(server.stop)
        plan = [("postgresql", n) for n in counts] + [("sqlite", 1)]
        for engine, workers in plan:
            workdir = Path(tmp) / f"{engine}-{workers}"
            workdir.mkdir()
            url = (server.new_database() if engine == "postgresql"
                   else f"sqlite:///{workdir / 'central.db'}")
            result = measure(url, workdir, payloads, workers)
            runs.append((engine, workers, result))
            print(f"{engine}, {workers} worker(s): {result['events']} events in "
                  f"{result['seconds']:.2f} s = {result['rate']:.0f} events/s; machine "
                  f"{result['machine_busy_pct']:.0f} % busy", flush=True)
    if args.write_docs:
        _write_docs(args, runs)
    return 0


def _write_docs(args: argparse.Namespace,
                runs: list[tuple[str, int, dict[str, Any]]]) -> None:
    counts = " ".join(f"--workers {n}" for n in (args.workers or [1, 2, 4]))
    command = (f"homecall bench ingest-workers {counts} --events {args.events} "
               f"--gateways {args.gateways} --write-docs")
    rows = "\n".join(f"| {engine} | {workers} | {r['events']} | {r['seconds']:.2f} | "
                     f"{r['rate']:.0f} | {r['machine_busy_pct']:.0f} % |"
                     for engine, workers, r in runs)
    text = f"""{SECTION}

`{command}` ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()};
other work was running on the machine).

N `homecall central ingest` processes in the broker's `$share/central` group, one database
(PostgreSQL: a private local server, default settings; SQLite: one worker, as it allows one
writer), {args.gateways} gateway clients publishing {args.events} hash-chained events in
all as fast as the broker takes them (the per-login publish rate lifted). Timed from the
first publish until every gateway's ack covers its last seq (central acks after commit).

| engine | workers | events | seconds | events/s | machine busy |
|---|---:|---:|---:|---:|---:|
{rows}

"Machine busy" is the share of all {os.cpu_count()} cores in use during the timed part,
every process counted (/proc/stat): near 100 % means the box, not the ingest design, is the
cap.

How to read it: the machine has {os.cpu_count()} cores shared by the broker, the
publishers, PostgreSQL and the workers, so workers beyond the cores compete for them. And
the broker deals one gateway's messages to every worker in turn, while storing a batch
locks each of its gateways' rows until commit: workers holding parts of the same gateways'
streams wait on each other. Here more workers were slower, not faster. What would scale:
workers on their own cores or machines, and each gateway's stream kept to one worker
(MQTT 5 shared subscriptions cannot route by topic; per-worker subscriptions to a share of
the gateway ids, or an EMQX/HiveMQ sticky strategy, can). Two workers storing parts of one
gateway's stream ack it correctly (the ack is the database's highest contiguous seq), as
`tests/e2e/test_ingest_workers.py` checks with one of them killed -9.
"""
    write_section(DOCS, SECTION, text)
