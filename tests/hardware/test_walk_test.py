"""The installer's walk-test, end to end: the real ``homecall gateway walk-test`` process
reads the simulated 125 kHz reader and sensor hub over ptys; this test plays the installer,
doing what each prompt asks on the simulated devices. All steps pass, the record reaches
central (the installer's token) and is listed on the household; and a reader that is never
plugged back in fails its step with what to check, exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from central.app import create_app
from central.people.models import HouseholdIn, OrganisationIn
from central.people.repository import People
from central.settings import CentralSettings
from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from homecall.clock import SystemClock
from tests.support.auth import bearer, create_user
from tests.support.serve import serving

GW = "gw-walk-1"
FOB = "em4100:0F00A1B2C3"


@dataclass
class Home:
    rfid: SimulatedRfidReader
    hub: SimulatedHub
    central: str
    household: str
    token_file: Path
    root: Path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.setattr("central.auth.service._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    rfid = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    rfid.start()
    hub = SimulatedHub(tmp_path / "dev" / "hub", heartbeat_s=0.5)
    hub.start()
    app = create_app(CentralSettings(database=f"sqlite:///{tmp_path / 'central.db'}",
                                     supervise=False), clock=SystemClock(), with_ingest=False)
    try:
        with serving(app) as url:
            people = People(app.state.db, SystemClock())
            org = people.create_organisation(OrganisationIn(name="Care Org"), "test")
            household = people.create_household(HouseholdIn(gateway_id=GW,
                                                            address="1 Elm Road"),
                                                org.id, "test")
            create_user(app, "ian", "installer", org.id)
            with httpx.Client(base_url=url) as client:
                token = bearer(client, "ian")["authorization"].split()[1]  # type: ignore[arg-type]
            token_file = tmp_path / "token"
            token_file.write_text(token)
            yield Home(rfid, hub, url, household.id, token_file, tmp_path)
    finally:
        hub.stop()
        rfid.stop()


def _walk(home: Home, *, replug: bool, timeout_s: float) -> tuple[int, list[str]]:
    args = [sys.executable, "-m", "homecall.cli", "gateway", "walk-test", "--plain",
            "--id", GW, "--rfid", home.rfid.link_path, "--hub", str(home.hub.link_path),
            "--tag", f"c-1={FOB}", "--door", "front", "--installer", "ian",
            "--step-timeout", str(timeout_s), "--record", str(home.root / "record.json"),
            "--central", home.central, "--token-file", str(home.token_file)]
    actions = {
        "tap-c-1": lambda: home.rfid.tap(FOB),
        "door-front-open": lambda: home.hub.door("front", True),
        "door-front-close": lambda: home.hub.door("front", False),
        "keysafe-open": lambda: home.hub.keysafe(True),
        "keysafe-close": lambda: home.hub.keysafe(False),
        "no-reply": lambda: home.hub.button("no_reply"),
        "reader-unplug": home.rfid.unplug,
        "reader-replug": home.rfid.replug if replug else (lambda: None),
    }
    walk = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert walk.stdout is not None
    for line in walk.stdout:
        lines.append(line.rstrip())
        if line.startswith("STEP "):
            step = line.split()[2].rstrip(":")
            actions[step]()
    return walk.wait(timeout=60), lines


def test_every_step_passes_and_the_record_is_kept_on_the_household(home: Home) -> None:
    status, lines = _walk(home, replug=True, timeout_s=20)
    assert status == 0, "\n".join(lines)
    results = [line for line in lines if line.startswith(("PASS", "FAIL"))]
    assert len(results) == 8 and all(r.startswith("PASS") for r in results), results
    assert "RESULT: PASS 8/8" in lines
    assert any("checked in" in line for line in lines)  # the carer card
    assert FOB not in "\n".join(lines)  # the fob's number is never shown
    record = json.loads((home.root / "record.json").read_text())
    assert record["passed"] and record["installer"] == "ian"
    assert {d["name"] for d in record["devices"]} >= {"rfid", "hub"}
    with httpx.Client(base_url=home.central) as client:
        stored = client.get(f"/api/households/{home.household}/commissioning",
                            headers={"authorization": f"Bearer {home.token_file.read_text()}"})
    assert stored.status_code == 200
    [kept] = stored.json()
    assert kept["passed"] and kept["received_by"] == "ian" and len(kept["steps"]) == 8


def test_a_reader_not_plugged_back_fails_its_step_with_what_to_check(home: Home) -> None:
    status, lines = _walk(home, replug=False, timeout_s=4)
    assert status == 1
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert failed.startswith("FAIL reader-replug: nothing within 4 s")
    assert "check its cable, power and the serial path" in failed
    assert "RESULT: FAIL 7/8" in lines
