"""``homecall gateway devices``: what an installer needs to see about each device.

The running daemon owns the devices (a serial port or a PN532 cannot be shared), so this
command does not open them while the daemon runs: the daemon writes a small JSON
device-state file every few seconds with :func:`write_device_states`, and this command
prints it, marking it stale if the daemon stopped writing. With ``--probe-rfid PATH``,
``--probe-hub PATH`` or ``--probe-nfc PATH`` (daemon stopped) it opens those devices itself
for a few seconds and reports what it finds (tap a fob during an RFID probe to see it
counted). A probe path that does not exist is a one-line error naming it. The hub's entry
also shows what its sensors last reported (``sensors``: doors, key safe, tamper, battery).
The file format (version 1)::

    {"version": 1, "written_at": "2026-03-02T12:00:00Z", "pid": 1234,
     "devices": [{"name": "hub", "kind": "hub", "path": "/dev/serial/by-id/...",
                  "state": "ok", "detail": "hub id hub-7f3a", "firmware": "1.3.0",
                  "last_frame": "2026-03-02T11:59:59.5Z",
                  "sensors": {"doors": {"front": "closed"}, "keysafe": {"keysafe": "closed"},
                              "tamper": "off", "battery_mv": 3650}}, ...]}

``state`` is one of ``ok``, ``fault``, ``absent``, ``disabled`` (as in
:class:`homecall.wire.DeviceStatus`); ``detail`` carries the fault reasons when not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from homecall.clock import format_utc, parse_utc
from homecall.wire import DeviceStatus

STATE_FILE_ENV = "HOMECALL_DEVICE_STATE"
DEFAULT_STATE_FILE = "/var/lib/homecall/devices.json"
#: The daemon rewrites the file when a device's state changes and at least this often.
DEVICE_STATE_REFRESH_S = 60.0
STALE_AFTER_S = 2.5 * DEVICE_STATE_REFRESH_S


def default_state_file() -> Path:
    return Path(os.environ.get(STATE_FILE_ENV, DEFAULT_STATE_FILE))


def _entry(item: Any, paths: Mapping[str, str]) -> dict[str, Any]:
    if isinstance(item, DeviceStatus):
        status, path = item, paths.get(item.name)
    else:  # a driver: anything with status() and, usually, .path
        status = item.status()
        path = paths.get(status.name, getattr(item, "path", None))
    body = status.model_dump(mode="json")
    body["path"] = path
    sensor_state = getattr(item, "sensor_state", None)
    if callable(sensor_state):
        body["sensors"] = sensor_state()
    return body


def write_device_states(
    path: str | os.PathLike[str],
    states: Iterable[Any],
    *,
    device_paths: Mapping[str, str] | None = None,
    written_at: datetime | None = None,
) -> None:
    """Atomically write the device-state file.

    ``states`` holds :class:`DeviceStatus` values or drivers (objects with ``status()`` and
    a ``path`` attribute). ``device_paths`` maps a device name to its path when the items
    do not carry one. ``written_at`` defaults to the real time: staleness is judged
    against the wall clock by an installer, not against a demo's scaled clock.
    """
    paths = dict(device_paths or {})
    doc = {
        "version": 1,
        "written_at": format_utc(written_at or datetime.now(UTC)),
        "pid": os.getpid(),
        "devices": [_entry(item, paths) for item in states],
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the gateway's user only
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(doc, indent=1) + "\n")
    tmp.replace(target)


def read_device_states(path: str | os.PathLike[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(path).read_text())
    if doc.get("version") != 1 or not isinstance(doc.get("devices"), list):
        raise ValueError(f"{path}: not a version 1 device-state file")
    return doc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help=f"device-state file the daemon writes (default ${STATE_FILE_ENV} or "
        f"{DEFAULT_STATE_FILE})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--probe-rfid", metavar="PATH",
                        help="open this 125 kHz reader now (daemon stopped); tap a fob")
    parser.add_argument("--probe-hub", metavar="PATH", help="open this hub now (daemon stopped)")
    parser.add_argument("--probe-nfc", metavar="PATH", help="open this NFC reader now")
    parser.add_argument(
        "--probe-seconds", type=float, default=3.0, help="how long a probe listens (default 3)"
    )


def _probe_paths(args: argparse.Namespace) -> dict[str, str]:
    return {kind: path for kind, path in (("rfid", args.probe_rfid), ("hub", args.probe_hub),
                                          ("nfc", args.probe_nfc)) if path}


def _ready(driver: Any) -> bool:
    """Seen enough to report: open, and for the hub its firmware and a full state report."""
    status = driver.status()
    if status.state != "ok":
        return False
    if driver.kind == "hub":
        return bool(status.firmware) and driver.syncs > 0 and not driver.debouncer.pending
    if driver.kind == "nfc":
        return bool(status.firmware)
    return False  # the 125 kHz reader listens for the whole probe: tap a fob meanwhile


def _probe(args: argparse.Namespace) -> list[dict[str, Any]]:
    import time

    from homecall.clock import SystemClock

    clock = SystemClock()
    drivers: list[Any] = []
    if args.probe_rfid:
        from gateway.drivers.rfid_reader import RfidReaderDriver

        drivers.append(RfidReaderDriver(args.probe_rfid, clock, lambda _obs: None))
        print(f"listening on {args.probe_rfid} for {args.probe_seconds:g} s: tap a fob",
              file=sys.stderr)
    if args.probe_hub:
        from gateway.drivers.sensor_hub import SensorHubDriver

        drivers.append(SensorHubDriver(args.probe_hub, clock, lambda _obs: None))
    if args.probe_nfc:
        from gateway.drivers.nfc_reader import NfcReaderDriver

        drivers.append(NfcReaderDriver(args.probe_nfc, clock, lambda _obs: None))
    for driver in drivers:
        driver.start()
    deadline = time.monotonic() + args.probe_seconds
    while time.monotonic() < deadline:
        if all(_ready(d) for d in drivers):
            break
        time.sleep(0.05)
    entries = [_entry(d, {}) for d in drivers]
    for driver in drivers:
        driver.stop()
    return entries


def _sensors_text(sensors: dict[str, Any] | None) -> str:
    if not sensors:
        return ""
    parts = [f"door {name} {state}" for name, state in sensors.get("doors", {}).items()]
    parts += [("key safe" if name == "keysafe" else f"key safe {name}") + f" {state}"
              for name, state in sensors.get("keysafe", {}).items()]
    parts.append(f"tamper {sensors.get('tamper', '?')}")
    battery = sensors.get("battery_mv")
    parts.append(f"battery {battery} mV" if battery is not None else "battery ?")
    return ", ".join(parts)


def _table(devices: list[dict[str, Any]]) -> str:
    headers = ("NAME", "KIND", "STATE", "FIRMWARE", "LAST FRAME", "PATH", "DETAIL", "SENSORS")
    rows = [
        (
            str(d.get("name") or ""),
            str(d.get("kind") or ""),
            str(d.get("state") or ""),
            str(d.get("firmware") or "-"),
            str(d.get("last_frame") or "-"),
            str(d.get("path") or "-"),
            str(d.get("detail") or ""),
            _sensors_text(d.get("sensors")),
        )
        for d in devices
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    probes = _probe_paths(args)
    if probes:
        from gateway.drivers.base import path_is_missing

        missing = [f"{kind}: serial device {path} does not exist"
                   for kind, path in probes.items() if path_is_missing(path)]
        if missing:
            print("; ".join(missing), file=sys.stderr)
            return 2
        devices = _probe(args)
        if args.json:
            print(json.dumps({"devices": devices}, indent=1))
        else:
            print(_table(devices))
        return 0 if all(d["state"] == "ok" for d in devices) else 1
    state_file = args.state_file or default_state_file()
    try:
        doc = read_device_states(state_file)
    except FileNotFoundError:
        print(
            f"no device-state file at {state_file}: is the gateway daemon running? "
            "(use --probe-rfid/--probe-hub/--probe-nfc PATH to test a device directly)",
            file=sys.stderr,
        )
        return 2
    except (OSError, ValueError) as err:
        print(f"cannot read {state_file}: {err}", file=sys.stderr)
        return 2
    age = (datetime.now(UTC) - parse_utc(doc["written_at"])).total_seconds()
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(_table(doc["devices"]))
        note = f"state written {age:.0f} s ago by pid {doc.get('pid')}"
        if age > STALE_AFTER_S:
            note += " -- STALE: the daemon may not be running"
        print(note)
    if age > STALE_AFTER_S:
        return 1
    return 0 if all(d.get("state") in ("ok", "disabled") for d in doc["devices"]) else 1
