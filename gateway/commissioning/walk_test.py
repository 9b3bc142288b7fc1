"""``homecall gateway walk-test``: the installer's commissioning walk-through, live.

Opens the devices as the gateway would (stop the gateway service first: a serial port has
one reader), then prompts one step at a time (each carer's fob, each door open and closed,
the key safe, the no-reply button, an NFC card, the reader unplugged and plugged back) and
shows ✓ with the times or ✗ with what to check, on a live terminal display (``rich``) or,
with ``--plain``, as one line per event (logs, scripts). At the end it prints the carer
card, writes the commissioning record (installer, time, gateway and device firmware, each
step) to ``--record`` and, with ``--central`` and ``--token-file``, sends it to central,
which keeps it on the household. Exit status 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import json
import queue
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.commissioning.steps import Step, StepResult, WalkTest, standard_steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--id", required=True, help="this gateway's id")
    add("--rfid", help="125 kHz reader serial path")
    add("--hub", help="sensor hub serial path")
    add("--nfc", help="NFC reader (tty:USB1:pn532, usb, or a pty path)")
    add("--plan", type=Path, help="plan JSON: its carers' tags are the fobs to tap")
    add("--tag", action="append", default=[], metavar="CARER=TAG",
        help="a carer's fob to tap (repeatable), e.g. c-12=em4100:0F00A1B2C3")
    add("--door", action="append", default=[], help="a door sensor name (default: front)")
    add("--no-keysafe", action="store_true", help="this home has no key-safe contact")
    add("--no-replug", action="store_true", help="skip unplugging the reader")
    add("--step-timeout", type=float, default=60.0, help="seconds allowed per step")
    add("--installer", default="installer", help="who is doing the walk-test")
    add("--record", type=Path, help="write the commissioning record (JSON) here")
    add("--central", help="central's URL: send the record there")
    add("--token-file", type=Path, help="file holding an installer's API bearer token")
    add("--plain", action="store_true", help="one line per event instead of a live display")
    add("--clock", default="system", help="clock spec (tests)")


def _tags(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    from homecall.plan import PlanDocument
    from homecall.tags import canonical_tag

    pairs: list[tuple[str, str | None]] = []
    if args.plan is not None:
        document = PlanDocument.parse(args.plan.read_text())
        pairs += [(c.id, t) for c in document.carers for t in c.tags[:1]]
    for item in args.tag:
        carer, _, tag = item.partition("=")
        if not tag:
            raise SystemExit(f"homecall gateway walk-test: --tag {item!r}: use CARER=TAG")
        pairs.append((carer, canonical_tag(tag)))
    return pairs or [("any", None)]  # no plan: any fob proves the reader


def record_of(args: argparse.Namespace, test: WalkTest, devices: list[Any],
              at: datetime) -> dict[str, Any]:
    from homecall import __version__

    return {
        "gateway_id": args.id, "installer": args.installer, "at": at.isoformat(),
        "gateway_version": __version__, "passed": test.passed,
        "devices": [{"name": d.name, "state": d.state, "firmware": d.firmware}
                    for d in devices],
        "steps": [{"id": r.step.id, "prompt": r.step.prompt, "ok": r.ok, "detail": r.detail,
                   "after_s": None if r.after_s is None else round(r.after_s, 2),
                   "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1)}
                  for r in test.results],
    }


def _line(result: StepResult) -> str:
    if result.ok:
        return (f"PASS {result.step.id}: {result.detail} after {result.after_s:.1f} s "
                f"(device {result.latency_ms or 0:.0f} ms)")
    return f"FAIL {result.step.id}: {result.detail}"


def _table(test: WalkTest) -> Any:
    from rich.table import Table

    table = Table(title=f"HomeCall walk-test ({len(test.results)}/{len(test.steps)})")
    table.add_column("")
    table.add_column("step")
    table.add_column("result")
    for index, step in enumerate(test.steps):
        if index < len(test.results):
            r = test.results[index]
            mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
            text = (f"{r.after_s:.1f} s, device {r.latency_ms or 0:.0f} ms" if r.ok
                    else r.detail)
        elif step is test.current:
            mark, text = "[yellow]▶[/]", "waiting…"
        else:
            mark, text = " ", ""
        table.add_row(mark, step.prompt, text)
    return table


def run(args: argparse.Namespace) -> int:
    from homecall.clock import clock_from_spec
    from homecall.observations import Observation

    clock = clock_from_spec(args.clock)
    inbox: queue.SimpleQueue[Observation] = queue.SimpleQueue()
    drivers: list[Any] = []
    if args.rfid:
        from gateway.drivers.rfid_reader import RfidReaderDriver

        drivers.append(RfidReaderDriver(args.rfid, clock, inbox.put))
    if args.hub:
        from gateway.drivers.sensor_hub import SensorHubDriver

        drivers.append(SensorHubDriver(args.hub, clock, inbox.put))
    if args.nfc:
        from gateway.drivers.nfc_reader import NfcReaderDriver

        drivers.append(NfcReaderDriver(args.nfc, clock, inbox.put))
    if not drivers:
        print("homecall gateway walk-test: no devices given (--rfid, --hub, --nfc)")
        return 2
    steps = standard_steps(
        _tags(args) if args.rfid else [], (args.door or ["front"]) if args.hub else [],
        keysafe=bool(args.hub) and not args.no_keysafe, no_reply=bool(args.hub),
        nfc=bool(args.nfc), reader_replug=bool(args.rfid) and not args.no_replug)
    test = WalkTest(steps, timeout_s=args.step_timeout)
    for driver in drivers:
        driver.start()
    live = None
    if not args.plain:
        from rich.live import Live

        live = Live(_table(test), refresh_per_second=4)
        live.start()
    try:
        time.sleep(0.5)  # let the devices open before the first prompt
        while not inbox.empty():
            inbox.get_nowait()  # what the devices said while opening is not a step
        test.start(clock.now())
        shown: Step | None = None
        while not test.done:
            if args.plain and test.current is not shown:
                shown = test.current
                assert shown is not None
                print(f"STEP {len(test.results) + 1}/{len(steps)} {shown.id}: "
                      f"{shown.prompt}", flush=True)
            try:
                item = inbox.get(timeout=0.1)
                result = test.feed(item, clock.now())
            except queue.Empty:
                result = test.tick(clock.now())
            if result is not None:
                if args.plain:
                    print(_line(result), flush=True)
                elif live is not None:
                    live.update(_table(test))
    finally:
        if live is not None:
            live.update(_table(test))
            live.stop()
        statuses = [d.status() for d in drivers]
        for driver in drivers:
            driver.stop()
    record = record_of(args, test, statuses, clock.now())
    passed = sum(r.ok for r in test.results)
    print(f"RESULT: {'PASS' if test.passed else 'FAIL'} {passed}/{len(steps)}", flush=True)
    print(CARER_CARD)
    if args.record is not None:
        args.record.write_text(json.dumps(record, indent=1) + "\n")
    if args.central:
        return _send(args, record) or (0 if test.passed else 1)
    return 0 if test.passed else 1


def _send(args: argparse.Namespace, record: dict[str, Any]) -> int:
    import httpx

    if args.token_file is None:
        print("homecall gateway walk-test: --central needs --token-file (an installer's token)")
        return 2
    token = args.token_file.read_text().strip()
    try:
        reply = httpx.post(f"{args.central.rstrip('/')}/api/gateways/{args.id}/commissioning",
                           json=record, headers={"authorization": f"Bearer {token}"},
                           timeout=30)
    except httpx.HTTPError as err:
        print(f"homecall gateway walk-test: record not sent: cannot reach central: {err}")
        return 1
    if reply.status_code != 201:
        print(f"homecall gateway walk-test: central refused the record ({reply.status_code}):"
              f" {reply.text[:200]}")
        return 1
    print(f"Commissioning record stored at central (#{reply.json().get('id')}).")
    return 0


CARER_CARD = """
Carer card (leave a copy by the door):
  green steady + one short beep ..... checked in
  green blinking + two short beeps .. checked out
  green quick flash ................. already recorded (tapped again)
  amber steady ...................... recorded, but no visit planned now
  amber blinking + three beeps ...... no-reply press recorded
  red steady + one long buzz ........ fob not known at this home
  red blinking + three long buzzes .. fault: NOT recorded, phone the office"""
