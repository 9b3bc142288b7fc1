"""``homecall sim``: run a simulated home's devices on ptys, optionally playing a scenario.

The device links (``rfid``, ``hub``, ``nfc``) appear under ``--dev-dir``; a file ``ready``
is written there once they exist, listing them as JSON. With ``--scenario`` the device
actions of its timeline are played on ``--clock`` and the simulator exits after the last one
(``--stay`` keeps the devices up until interrupted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dev-dir", type=Path, required=True, help="directory for device links")
    parser.add_argument("--scenario", type=Path, help="scenario JSON to play ")
    parser.add_argument("--devices", default=None,
                        help="comma list of rfid,hub,nfc (default: what the scenario uses)")
    parser.add_argument("--clock", default=os.environ.get("HOMECALL_CLOCK", "system"))
    parser.add_argument("--stay", action="store_true", help="keep devices up after the timeline")


def run(args: argparse.Namespace) -> int:
    from firmware_sim import SimulatorError
    from firmware_sim.player import ScenarioPlayer, SimulatedHome, device_handlers, devices_needed
    from homecall.clock import clock_from_spec
    from homecall.scenario import DEVICE_ACTIONS, ScenarioError, load_scenario

    clock = clock_from_spec(args.clock)
    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        if args.devices:
            devices = {d.strip() for d in args.devices.split(",") if d.strip()}
        elif scenario is not None:
            devices = devices_needed(scenario)
        else:
            devices = {"rfid", "hub", "nfc"}
        home = SimulatedHome(args.dev_dir, clock, devices)
    except (ScenarioError, SimulatorError) as err:
        print(f"homecall sim: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    home.start()
    (args.dev_dir / "ready").write_text(
        json.dumps({d: str(home.link(d)) for d in sorted(devices)})
    )
    try:
        if scenario is not None:
            player = ScenarioPlayer(scenario, clock, device_handlers(home), only=DEVICE_ACTIONS)
            player.run(stop)
            for error in player.errors:
                print(f"homecall sim: {error}", file=sys.stderr)
            if not args.stay:
                stop.wait(0.5)  # let the last frames drain before the ptys go away
                return 1 if player.errors else 0
        stop.wait()
        return 0
    finally:
        home.stop()
