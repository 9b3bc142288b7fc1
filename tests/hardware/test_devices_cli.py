"""``homecall gateway devices``: the state file the daemon writes, and live probes."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_sim.hub import SimulatedHub
from firmware_sim.pn532 import SimulatedPn532
from gateway import devices_cli
from homecall.wire import DeviceStatus


def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    devices_cli.add_arguments(parser)
    ns = parser.parse_args([])
    for key, value in kw.items():
        setattr(ns, key, value)
    return ns


def test_state_file_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "devices.json"
    hub = DeviceStatus(
        name="hub",
        kind="hub",
        state="ok",
        firmware="1.3.0",
        last_frame=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    )
    nfc = DeviceStatus(name="nfc", kind="nfc", state="absent", detail="unplugged")
    devices_cli.write_device_states(
        state, [hub, nfc], device_paths={"hub": "/dev/ttyAMA0", "nfc": "usb"}
    )
    doc = json.loads(state.read_text())
    assert doc["version"] == 1 and doc["devices"][0]["path"] == "/dev/ttyAMA0"
    assert devices_cli.run(_args(state_file=state)) == 1  # nfc absent
    out = capsys.readouterr().out
    assert "hub" in out and "1.3.0" in out and "unplugged" in out and "/dev/ttyAMA0" in out


def test_stale_and_missing_state_file(tmp_path: Path) -> None:
    state = tmp_path / "devices.json"
    assert devices_cli.run(_args(state_file=state)) == 2
    ok = DeviceStatus(name="hub", kind="hub", state="ok")
    devices_cli.write_device_states(
        state, [ok], written_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    assert devices_cli.run(_args(state_file=state)) == 1


def test_probe_simulated_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        SimulatedHub(tmp_path / "hub", firmware="2.0.1") as _hub,
        SimulatedPn532(tmp_path / "nfc") as _nfc,
    ):
        code = devices_cli.run(
            _args(probe_hub=str(tmp_path / "hub"), probe_nfc=str(tmp_path / "nfc"), json=True)
        )
    devices = json.loads(capsys.readouterr().out)["devices"]
    assert code == 0
    assert [(d["name"], d["state"], d["firmware"]) for d in devices] == [
        ("hub", "ok", "2.0.1"),
        ("nfc", "ok", "PN532v1.6"),
    ]
