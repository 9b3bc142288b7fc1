"""``homecall gateway devices`` probes: the 125 kHz reader (a fob tapped during the probe is
counted), the hub's door, key-safe, tamper and battery state, and a one-line error for a
serial path that does not exist."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import pytest

from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from gateway import devices_cli


def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    devices_cli.add_arguments(parser)
    ns = parser.parse_args([])
    for key, value in kw.items():
        setattr(ns, key, value)
    return ns


def test_probe_shows_hub_sensor_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SimulatedHub(tmp_path / "hub", doors=("front", "back")) as hub:
        hub.door("back", True)
        hub.keysafe(True)
        hub.tamper(True)
        hub.battery(3650)
        code = devices_cli.run(_args(probe_hub=str(tmp_path / "hub"), json=True))
    [entry] = json.loads(capsys.readouterr().out)["devices"]
    assert code == 1  # tamper is a fault
    assert entry["sensors"] == {
        "doors": {"back": "open", "front": "closed"},
        "keysafe": {"keysafe": "open"},
        "tamper": "on",
        "battery_mv": 3650,
    }


def test_probe_table_reads_like_the_house(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatedHub(tmp_path / "hub", doors=("front",)) as hub:
        hub.battery(3700)
        assert devices_cli.run(_args(probe_hub=str(tmp_path / "hub"))) == 0
    out = capsys.readouterr().out
    assert "door front closed, key safe closed, tamper off, battery 3700 mV" in out


def test_probe_rfid_counts_a_tapped_fob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = SimulatedRfidReader(str(tmp_path / "rfid"))
    reader.start()
    # The installer holds a fob on the reader while the probe starts: one hold, one tap,
    # whenever within the hold the probe begins listening.
    holder = threading.Thread(target=reader.tap, args=("em4100:0F00A1B2C3",),
                              kwargs={"hold_real_s": 1.0})
    holder.start()
    try:
        code = devices_cli.run(_args(probe_rfid=str(tmp_path / "rfid"), probe_seconds=2.0,
                                     json=True))
    finally:
        holder.join()
        reader.stop()
    [entry] = json.loads(capsys.readouterr().out)["devices"]
    assert code == 0
    assert (entry["name"], entry["kind"], entry["state"]) == ("rfid", "rfid-em4100", "ok")
    assert "1 tap" in entry["detail"]


def test_missing_serial_path_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "ttyUSB9"
    assert devices_cli.run(_args(probe_rfid=str(missing))) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rfid: serial device {missing} does not exist"
