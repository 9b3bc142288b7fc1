"""``homecall demo``: play a scenario through the whole stack and report central's view.

Starts Mosquitto (private config, free loopback port), central, the simulator and the
gateway as separate processes sharing one scaled clock (``--speed`` times real time), plays
the scenario's timeline (device actions in the simulator, infrastructure actions here), waits
until central holds every event the gateway journalled, writes the scenario report, and then
either stops everything (``--no-serve``) or leaves central running and prints its URL and a
demo login. While serving, the shared clock runs at real speed from the scenario's end, so
alerts worked in the browser are stamped with the time they were worked. A work directory
the demo made itself (under the system's temporary directory) is removed when it stops,
unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Real seconds between starting the processes and the scenario's first instant.
STARTUP_LEAD_S = 4.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, required=True,
                        help="scenario JSON (see docs/scenarios.md)")
    parser.add_argument("--speed", type=float, default=600.0,
                        help="simulated seconds per real second (default 600)")
    parser.add_argument("--report-json", type=Path, help="write central's final view here")
    parser.add_argument("--no-serve", action="store_true",
                        help="stop everything after the report instead of serving the dashboard")
    parser.add_argument("--workdir", type=Path, help="where logs, journal and databases go")
    parser.add_argument("--http-port", type=int, help="central's HTTP port (default: free port)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary work directory (logs, journal, databases) "
                             "when the demo stops")


def run(args: argparse.Namespace) -> int:
    from homecall.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as err:
        print(f"homecall demo: {err}", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("homecall demo: --speed must be positive", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="homecall-demo-"))
    status = 1
    try:
        status = _run(args, scenario, workdir)
        return status
    finally:
        # A failed run keeps its logs (the error message points at them).
        if args.workdir is None and not args.keep and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif args.workdir is None:
            print(f"Kept {workdir} (logs, journal, databases)")


def _run(args: argparse.Namespace, scenario: Any, workdir: Path) -> int:
    from orchestration.stack import StackError

    # Stopped by a signal (a terminal closed, `timeout`, systemd): stop everything we started,
    # exactly as Ctrl-C does, rather than leaving broker, central and gateway running.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        report, stack = play(scenario, args.speed, workdir, http_port=args.http_port,
                             real_speed_after_end=not args.no_serve)
    except StackError as err:
        print(f"homecall demo: {err} (logs in {workdir / 'logs'})", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2)
    if args.report_json:
        args.report_json.parent.mkdir(parents=True, exist_ok=True)
        args.report_json.write_text(text + "\n")
    print(_summary(scenario.name, report))
    if args.no_serve:
        stack.stop()
        return 0
    print(f"\nCentral is running: {stack.url}  (logs in {workdir / 'logs'}; Ctrl-C stops)")
    print("The scenario has played: the clock now runs at real speed.")
    print(f"Demo login: {stack.admin_user} / {stack.admin_password}  (an admin; the password is "
          f"in {workdir / 'keys' / 'admin.password'})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def play(scenario: Any, speed: float, workdir: Path, *, http_port: int | None = None,
         drain_timeout_s: float = 60.0, real_speed_after_end: bool = False,
         ) -> tuple[dict[str, Any], Any]:
    """Run ``scenario`` end to end; returns (report, running stack). Caller stops the stack.
    ``real_speed_after_end``: the shared clock slows to real speed at the scenario's end."""
    from firmware_sim.player import ScenarioPlayer, devices_needed
    from homecall.clock import ScaledClock
    from homecall.scenario import INFRA_ACTIONS, Step
    from orchestration.stack import Stack, StackError

    clock = ScaledClock(scenario.start, speed, anchor=time.time() + STARTUP_LEAD_S,
                        real_after=scenario.end if real_speed_after_end else None)
    stack = Stack(workdir, clock.spec(), http_port=http_port)
    gateway_id = scenario.gateway
    try:
        stack.start_broker()
        stack.start_central()
        stack.upload_plan(scenario.plan)
        devices = stack.start_sim(scenario.source and Path(scenario.source),
                                  devices_needed(scenario))
        stack.add_gateway(gateway_id, devices)
        stack.start_gateway(gateway_id)

        def infra(step: Step) -> None:
            action = step.action
            if action.do == "network":
                assert stack.relay is not None
                (stack.relay.cut if action.state == "down" else stack.relay.restore)()
            elif action.do == "broker":
                if action.state == "down":
                    stack.broker.stop()
                else:
                    stack.broker.start()
            elif action.do == "gateway":
                stack.crash_gateway(gateway_id)
                if action.state == "restart":
                    stack.start_gateway(gateway_id)
            elif action.do == "plan_update":
                assert action.visits is not None
                stack.upload_plan(scenario.plan_update(action.visits))

        handlers = {name: infra for name in INFRA_ACTIONS}
        player = ScenarioPlayer(scenario, clock, handlers, only=INFRA_ACTIONS)
        thread = threading.Thread(target=player.run, name="infra-player", daemon=True)
        thread.start()
        wait = clock.real_seconds_until(scenario.end)
        log.info("playing %r: %.1f s of real time", scenario.name, max(wait, 0))
        time.sleep(max(wait, 0))
        thread.join(timeout=5)
        gateway = stack.gateways[gateway_id].process
        if gateway is None or gateway.poll() is not None:
            stack.start_gateway(gateway_id)  # a scenario that ended with the gateway down
        if not stack.wait_delivered(gateway_id, timeout_s=drain_timeout_s):
            raise StackError("central did not receive every journalled event in time")
        return stack.report(gateway_id), stack
    except BaseException:
        stack.stop()
        raise


def _summary(name: str, report: dict[str, Any]) -> str:
    lines = [f"Scenario: {name}", "Visits:"]
    for visit in report["visits"]:
        extra = ""
        if visit["punctuality"]:
            extra = f", {visit['punctuality']}"
            if visit["minutes_outside_window"]:
                extra += f" by {visit['minutes_outside_window']} min"
        lines.append(f"  {visit['id']}: {visit['status']}{extra}, "
                     f"{len(visit['attendances'])} attendance(s)")
    lines.append("Alerts:")
    for alert in report["alerts"] or []:
        lines.append(f"  {alert['raised_at']} {alert['severity']:8} {alert['type']} "
                     f"(visit {alert['visit']}, {alert['status']})")
    if not report["alerts"]:
        lines.append("  none")
    lines.append(f"Events lost: {report['events_lost']}, duplicated: {report['events_duplicated']}")
    return "\n".join(lines)
