"""The ``homecall`` command line: one entry point for every part of the product.

Each subcommand lives in the module that owns it; that module exposes
``add_arguments(parser)`` and ``run(args) -> int``. This file only maps names to modules and
imports just the module of the command being run (so ``homecall sim`` never loads FastAPI,
and a problem in one command's module cannot break another command).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from homecall import HomeCallError

# (group, command) -> module; group None means a top-level command.
COMMANDS: dict[tuple[str | None, str], tuple[str, str]] = {
    ("central", "serve"): ("central.server", "run the central service (HTTP API + MQTT ingest)"),
    ("central", "ingest"): ("central.ingest.worker",
                            "run MQTT ingest as its own process (N share the broker)"),
    ("central", "migrate"): ("central.db.migrate", "create or upgrade central's database schema"),
    ("central", "create-user"): ("central.auth.cli", "create a staff account (the first admin)"),
    ("central", "init-ca"): ("central.provisioning.ca",
                             "create central's CA for gateway certificates (and the broker's)"),
    ("central", "sync-crl"): ("central.provisioning.crl_sync",
                              "on a broker's host: fetch central's CRL, restart the broker "
                              "when it changed"),
    ("gateway", "run"): ("gateway.settings", "run the home gateway daemon"),
    ("gateway", "provision"): ("gateway.provision",
                               "enrol this device with central using an installer's code"),
    ("gateway", "walk-test"): ("gateway.commissioning.walk_test",
                               "the installer's step-by-step device test, with its record"),
    ("gateway", "install-service"): ("gateway.install_service",
                                     "write the systemd unit, udev rules and log rotation"),
    ("gateway", "devices"): ("gateway.devices_cli", "list the gateway's devices and their state"),
    ("gateway", "journal"): ("gateway.journal_cli",
                             "read a journal: backlog, verify the hash chain, export events"),
    (None, "sim"): ("firmware_sim.cli", "run the device simulator / scenario player"),
    (None, "demo"): ("orchestration.demo", "run the whole stack on a scenario"),
}

#: ``homecall bench NAME``: NAME -> module exposing add_arguments/run.
BENCHES: dict[str, tuple[str, str]] = {
    "latency": ("orchestration.benchmarks.latency",
                "EM4100 frame on a pty -> broker: latency, loss"),
    "rules": ("orchestration.benchmarks.rules", "rules engine throughput on a week's plan"),
    "core-path": ("orchestration.benchmarks.core_path",
                  "CPU a tap costs on the gateway's core path, without threads"),
    "hardware": ("orchestration.benchmarks.hardware", "125 kHz tap, NFC read and hub latency"),
    "replay": ("orchestration.benchmarks.replay", "7-day outage: journal size, replay rate, RSS"),
    "faults": ("orchestration.benchmarks.faults", "run the delivery fault suite (tests/faults)"),
    "fuzz": ("orchestration.benchmarks.fuzz",
             "a million generated inputs through each device parser"),
    "ingest": ("orchestration.benchmarks.ingest",
               "central ingest events/s on SQLite and PostgreSQL"),
    "ingest-workers": ("orchestration.benchmarks.ingest_workers",
                       "events/s by 1, 2 and 4 ingest processes on PostgreSQL"),
    "drain": ("orchestration.benchmarks.drain", "backlog drain time after a broker outage"),
    "sd-writes": ("orchestration.benchmarks.sd_writes",
                  "bytes the gateway writes to its SD card per day, idle and per event"),
    "fleet": ("orchestration.benchmarks.fleet", "N gateways on the wire vs one broker and central"),
    "poison": ("orchestration.benchmarks.poison",
               "a good gateway's event delay while a hostile one floods central with poison"),
    "backup": ("orchestration.benchmarks.backup", "deadline -> backup alert stored"),
    "outage": ("orchestration.benchmarks.outage",
               "N gateways silent at once -> all marked offline and alerted"),
    "escalation": ("orchestration.benchmarks.escalation",
                   "escalation due -> stored, and -> the organisation's webhook received"),
    "dashboard": ("orchestration.benchmarks.dashboard",
                  "alert stored at central -> its row on the desk's screen in chromium"),
    "reports": ("orchestration.benchmarks.reports",
                "contract reports over a year of 2,000 homes, SQLite and PostgreSQL"),
    "all": ("orchestration.benchmarks.all", "every bench above, one after another (make bench)"),
}


def _selected(argv: Sequence[str]) -> tuple[str | None, str] | None:
    """Which (group, command) the words of ``argv`` name, before full parsing."""
    words = [w for w in argv if not w.startswith("-")]
    if not words:
        return None
    first = words[0]
    if first == "bench":
        return ("bench", words[1]) if len(words) > 1 else None
    if (None, first) in COMMANDS:
        return (None, first)
    if len(words) > 1 and (first, words[1]) in COMMANDS:
        return (first, words[1])
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full command tree; only the selected command's module is imported."""
    selected = _selected(argv)
    parser = argparse.ArgumentParser(prog="homecall", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}
    for (group, name), (module_name, help_text) in COMMANDS.items():
        if group is None:
            sub = top.add_parser(name, help=help_text, description=help_text)
        else:
            if group not in groups:
                group_parser = top.add_parser(group, help=f"{group} commands")
                groups[group] = group_parser.add_subparsers(
                    dest="subcommand", required=True, metavar="SUBCOMMAND"
                )
            sub = groups[group].add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if selected == (group, name):
            importlib.import_module(module_name).add_arguments(sub)
    bench = top.add_parser("bench", help="benchmarks (results go to docs/benchmarks.md)")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, (module_name, help_text) in BENCHES.items():
        sub = bench_sub.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if selected == ("bench", name):
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except HomeCallError as err:
        # A project error already says what was wrong (a path, a value): one line, no trace.
        # Anything else is a bug and keeps its traceback.
        print(f"homecall: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
