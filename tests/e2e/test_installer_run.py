"""An installer's whole visit, scripted on real parts and timed: at central, create the
household and get its enrolment code; on the (simulated) Pi, ``homecall gateway provision``,
``homecall gateway install-service`` into a scratch root, ``homecall gateway walk-test`` with
the simulator's reader and hub; then the gateway started from the settings provisioning
wrote connects to Mosquitto over mutual TLS with its own certificate, and a fob tapped at
the door is stored at central under its id. The commissioning record is on the household.
Each step's time is printed (``-s``) for the issue note."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from central.app import create_app
from central.people.models import OrganisationIn
from central.people.repository import People
from central.provisioning.ca import CertificateAuthority
from central.settings import CentralSettings
from firmware_sim.em4100 import SimulatedRfidReader
from firmware_sim.hub import SimulatedHub
from homecall.clock import SystemClock
from orchestration.broker import CENTRAL_USER, MosquittoBroker, TlsListener, free_port
from tests.conftest import wait_for
from tests.support.auth import bearer, create_user
from tests.support.serve import serving

FOB = "em4100:0F00C0FFEE"
UNKNOWN_FOB = "em4100:0F00BADBAD"


def _homecall(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "homecall.cli", *args], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"homecall {args[:2]}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[tuple[SimulatedRfidReader, SimulatedHub]]:
    rfid = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    rfid.start()
    hub = SimulatedHub(tmp_path / "dev" / "hub", heartbeat_s=0.5)
    hub.start()
    try:
        yield rfid, hub
    finally:
        hub.stop()
        rfid.stop()


def test_an_installer_goes_from_a_fresh_pi_to_a_walk_tested_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    devices: tuple[SimulatedRfidReader, SimulatedHub],
) -> None:
    rfid, hub = devices
    monkeypatch.setattr("central.auth.service._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ca = CertificateAuthority(tmp_path / "ca")
    ca.init("127.0.0.1")
    tls = TlsListener(port=free_port(), cafile=ca.cert_path, certfile=ca.broker_cert_path,
                      keyfile=ca.broker_key_path, crlfile=ca.crl_path)
    with MosquittoBroker(tmp_path / "broker", tls=tls) as broker:
        settings = CentralSettings(
            database=f"sqlite:///{tmp_path / 'central.db'}", ca_dir=ca.directory,
            gateway_broker_host="127.0.0.1", gateway_broker_tls_port=tls.port,
            mqtt_port=broker.port, mqtt_user=CENTRAL_USER,
            mqtt_password=broker.passwords[CENTRAL_USER], mqtt_client_id="central-install",
            supervise=False)
        app = create_app(settings, clock=SystemClock())
        with serving(app) as url:
            people = People(app.state.db, SystemClock())
            org = people.create_organisation(OrganisationIn(name="Care Org"), "test")
            create_user(app, "ian", "installer", org.id)
            create_user(app, "mo", "monitor", org.id)  # reads the events (installers do not)
            with httpx.Client(base_url=url) as client:
                installer = bearer(client, "ian")  # type: ignore[arg-type]
                monitor = bearer(client, "mo")  # type: ignore[arg-type]
            _visit(tmp_path, url, org.id, installer, monitor, rfid, hub)


def _visit(tmp_path: Path, url: str, org_id: str, installer: dict[str, str],
           monitor: dict[str, str], rfid: SimulatedRfidReader, hub: SimulatedHub) -> None:
    timings: list[tuple[str, float]] = []
    started = last = time.monotonic()

    def lap(step: str) -> None:
        nonlocal last
        now = time.monotonic()
        timings.append((step, now - last))
        last = now

    client = httpx.Client(base_url=url, headers=installer, timeout=30)
    # 1. At central: the household, and a code for it.
    household = client.post("/api/households", json={
        "organisation_id": org_id, "gateway_id": "gw-flat-12", "address": "Flat 12, Elm Court",
        "key_safe_notes": "by the back door"})
    assert household.status_code == 201, household.text
    household_id = household.json()["id"]
    issued = client.post(f"/api/households/{household_id}/enrolment-codes")
    assert issued.status_code == 201, issued.text
    code = issued.json()["code"]
    lap("household and enrolment code at central")

    # 2. On the Pi: enrol (its own key, central's certificate), then the service files.
    root = tmp_path / "pi"
    etc = root / "etc" / "homecall"
    journal = root / "var" / "lib" / "homecall" / "journal.db"
    enrolled = _homecall("gateway", "provision", "--central", url, "--code", code,
                         "--config-dir", str(etc), "--journal", str(journal))
    assert "Enrolled as gw-flat-12" in enrolled.stdout
    assert (etc / "gateway.key").stat().st_mode & 0o777 == 0o600
    lap("provision")
    _homecall("gateway", "install-service", "--root", str(root),
              "--config", str(etc / "gateway.toml"))
    assert (root / "etc" / "systemd" / "system" / "homecall-gateway.service").exists()
    lap("install-service")

    # 3. The walk-test, the installer doing what each prompt asks.
    token_file = tmp_path / "token"
    token_file.write_text(installer["authorization"].split()[1])
    walk = subprocess.Popen(
        [sys.executable, "-m", "homecall.cli", "gateway", "walk-test", "--plain",
         "--id", "gw-flat-12", "--rfid", rfid.link_path, "--hub", str(hub.link_path),
         "--tag", f"c-1={FOB}", "--door", "front", "--installer", "ian",
         "--step-timeout", "20", "--record", str(tmp_path / "record.json"),
         "--central", url, "--token-file", str(token_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    actions = {
        "tap-c-1": lambda: rfid.tap(FOB), "door-front-open": lambda: hub.door("front", True),
        "door-front-close": lambda: hub.door("front", False),
        "keysafe-open": lambda: hub.keysafe(True), "keysafe-close": lambda: hub.keysafe(False),
        "no-reply": lambda: hub.button("no_reply"), "reader-unplug": rfid.unplug,
        "reader-replug": rfid.replug,
    }
    lines: list[str] = []
    assert walk.stdout is not None
    for line in walk.stdout:
        lines.append(line.rstrip())
        if line.startswith("STEP "):
            actions[line.split()[2].rstrip(":")]()
    assert walk.wait(timeout=60) == 0, "\n".join(lines)
    assert "RESULT: PASS 8/8" in lines
    lap("walk-test (8 steps)")

    # 4. The gateway, from what provisioning wrote: mutual TLS, its own identity.
    gateway = subprocess.Popen(
        [sys.executable, "-m", "homecall.cli", "gateway", "run",
         "--config", str(etc / "gateway.toml"), "--rfid", rfid.link_path,
         "--hub", str(hub.link_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: client.get("/api/gateways").json() and any(
            g["id"] == "gw-flat-12" and g["state"] == "online"
            for g in client.get("/api/gateways").json()), timeout=60,
            message="the gateway online at central over mutual TLS")
        rfid.tap(UNKNOWN_FOB)
        events = wait_for(lambda: [e for e in client.get(
            "/api/events", params={"gateway": "gw-flat-12"}, headers=monitor).json()
            if e["type"] == "unknown_tag"], timeout=30,
            message="the tapped fob's event at central")
        assert UNKNOWN_FOB not in json.dumps(events)  # the fob number never leaves the home
        lap("gateway online over mutual TLS, first tap at central")
    finally:
        gateway.terminate()
        _, stderr = gateway.communicate(timeout=30)
    assert UNKNOWN_FOB.split(":")[1] not in stderr  # and the log redacts it

    # 5. The record of the visit, on the household.
    [record] = client.get(f"/api/households/{household_id}/commissioning").json()
    assert record["passed"] and record["received_by"] == "ian"
    lap("commissioning record read back")
    total = time.monotonic() - started
    print("\ninstaller run, seconds per step:")
    for step, seconds in timings:
        print(f"  {step}: {seconds:.1f}")
    print(f"  total: {total:.1f}")
    client.close()
