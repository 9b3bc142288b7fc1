"""``homecall bench fleet``'s entry: :func:`add_arguments` (its options) and :func:`run`,
which checks the open-file limit and the generator's events, starts one Mosquitto (every
gateway's password in one file) and one central, drives the phases, prints the results as
JSON and keeps them in ``WORKDIR/results.json``, and with ``--write-docs`` replaces this
run's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestration.benchmarks import DOCS, write_section
from orchestration.benchmarks.fleet.errors import FleetError
from orchestration.benchmarks.fleet.gateway import self_check
from orchestration.benchmarks.fleet.generator import Fleet, source_addresses
from orchestration.benchmarks.fleet.host import (
    describe_machine,
    listen_backlog,
    proc_limit,
    raise_fd_limit,
    read_sysctl,
)
from orchestration.benchmarks.fleet.monitor import Sampler
from orchestration.benchmarks.fleet.phases import drive
from orchestration.benchmarks.fleet.report import heading, markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gateways", type=int, default=1000, help="simulated gateways (N)")
    parser.add_argument("--heartbeat", type=float, default=10.0,
                        help="seconds between status heartbeats (the gateway's default 10)")
    parser.add_argument("--event-interval", type=float, default=60.0,
                        help="mean seconds between events of one gateway in the steady phase")
    parser.add_argument("--duration", type=float, default=60.0, help="steady phase, seconds")
    parser.add_argument("--stop-sample", type=int, default=None,
                        help="gateways stopped without DISCONNECT (default 1%%, at least 5)")
    parser.add_argument("--stop-mode", choices=["close", "silent"], default="close",
                        help="close: socket closed (process died); silent: socket left open "
                             "and unread (power/line gone; the broker's keep-alive notices)")
    parser.add_argument("--stop-wait", type=float, default=None,
                        help="seconds to watch the stopped sample (default 3 heartbeats + "
                             "1.5 keep-alives + 10)")
    parser.add_argument("--backlog", type=int, default=20,
                        help="events each gateway publishes at once in the flood phase (0: skip)")
    parser.add_argument("--ack-timeout", type=float, default=5.0,
                        help="resend everything unacked when acks stop for this long")
    parser.add_argument("--connect-concurrency", type=int, default=64,
                        help="CONNECTs awaiting CONNACK at once")
    parser.add_argument("--source-addresses", type=int, default=None,
                        help="loopback source addresses to spread connections over "
                             "(127.0.1.1 ...; default: one per 20,000 gateways)")
    parser.add_argument("--no-persistence", action="store_true",
                        help="run Mosquitto without persistence (default: as deployed)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")


def run(args: argparse.Namespace) -> int:
    from orchestration.stack import Stack

    if args.gateways < 1:
        raise FleetError("--gateways must be at least 1")
    limits = raise_fd_limit()
    needed = args.gateways + 64
    if limits[0] < needed:
        raise FleetError(f"open-file limit {limits[0]} is below the {needed} sockets "
                         f"{args.gateways} gateways need in this process (and in Mosquitto): "
                         f"raise it with `ulimit -n` (hard limit {limits[1]})")
    self_check()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="homecall-bench-fleet-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(workdir, "system", heartbeat_s=args.heartbeat)
    if args.no_persistence:
        stack.broker.persistence = False
    width = len(str(args.gateways))
    passwords = {f"fleet-{i:0{width}d}": secrets.token_urlsafe(18) for i in range(args.gateways)}
    # One password file for all (MosquittoBroker.add_user rewrites it per user: O(N^2)).
    stack.broker.passwords.update(passwords)
    results: dict[str, Any] = {"gateways": args.gateways}
    try:
        t0 = time.monotonic()
        stack.broker.start()
        results["broker_start_s"] = round(time.monotonic() - t0, 2)
        stack.start_central()
        assert stack.broker.process is not None and stack.central is not None
        broker_pid, central_pid = stack.broker.process.pid, stack.central.pid
        results["settings"] = {
            "ulimit_n": f"{limits[0]} (hard {limits[1]})",
            "mosquitto_nofile": proc_limit(broker_pid),
            "mosquitto_listen_backlog": listen_backlog(stack.broker.port),
            "net.core.somaxconn": read_sysctl("net.core.somaxconn"),
            "net.ipv4.tcp_max_syn_backlog": read_sysctl("net.ipv4.tcp_max_syn_backlog"),
            "net.ipv4.ip_local_port_range": read_sysctl("net.ipv4.ip_local_port_range"),
            "fs.file-max": read_sysctl("fs.file-max"),
            "source_addresses": len(source_addresses(args.gateways, args.source_addresses)),
            "persistence": stack.broker.persistence,
        }
        central_password = stack.broker.passwords["central"]
        fleet = Fleet(args, stack.broker.port, passwords, central_password, stack.http_port)
        fleet.http_headers = {"authorization": stack.http.headers["authorization"]}
        sampler = Sampler({"broker": broker_pid, "central": central_pid})
        results.update(asyncio.run(drive(fleet, sampler)))
        results["open_files_peak"] = sampler.fds
    finally:
        stack.stop()
    results["machine"] = describe_machine()
    print(json.dumps(results, indent=2))
    (workdir / "results.json").write_text(json.dumps(results, indent=2))
    if args.write_docs:
        write_section(DOCS, heading(args), markdown(args, results))
        print(f"wrote {DOCS}", file=sys.stderr)
    return 0
