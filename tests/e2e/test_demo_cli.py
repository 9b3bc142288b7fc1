"""`homecall demo` plays the bundled scenario through real processes (Mosquitto, central,
simulator, gateway) and writes central's view as docs/scenarios.md describes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_scenario_report(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "homecall.cli", "demo",
         "--scenario", str(ROOT / "scenarios" / "on-time-and-late.json"),
         "--speed", "600", "--report-json", str(report_path), "--no-serve",
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    visits = {v["id"]: v for v in report["visits"]}

    breakfast = visits["v-breakfast"]
    assert breakfast["status"] == "completed"
    assert breakfast["punctuality"] == "on_time"
    assert [a["carer"] for a in breakfast["attendances"]] == ["c-2"]
    assert breakfast["attendances"][0]["arrived"].startswith("2026-03-02T07:34")
    assert breakfast["attendances"][0]["departed"].startswith("2026-03-02T08:05")

    late = visits["v-1"]
    assert late["status"] == "completed"
    assert late["punctuality"] == "late"
    # The tap is at 12:01 against a window closing 11:00; the scaled clock (600x) may stamp
    # it a few simulated seconds later, never a whole extra minute on a healthy machine.
    assert late["minutes_outside_window"] in (61, 62)

    alerts = [(a["type"], a["severity"], a["visit"], a["status"]) for a in report["alerts"]]
    # the late carer's arrival clears visit_late by itself (the reason is in its audit trail)
    assert ("visit_late", "high", "v-1", "resolved") in alerts
    assert ("visit_missed", "critical", "v-1", "superseded") in alerts
    # nobody works the demo's alerts: a high one left alone 15 min is escalated
    assert ("call_outside_tolerance", "high", "v-1", "escalated") in alerts
    late_alert = next(a for a in report["alerts"] if a["type"] == "visit_late")
    assert late_alert["raised_at"] == "2026-03-02T11:00:00Z"
    assert not any(a["visit"] == "v-breakfast" for a in report["alerts"])
    assert report["events_lost"] == 0
    assert report["events_duplicated"] == 0
    assert "Central is running" not in result.stdout  # --no-serve stops everything


def test_demo_names_an_unknown_action(tmp_path: Path) -> None:
    scenario = json.loads((ROOT / "scenarios" / "on-time-and-late.json").read_text())
    scenario["timeline"].append({"at": "09:00", "do": "teleport"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    result = subprocess.run(
        [sys.executable, "-m", "homecall.cli", "demo", "--scenario", str(path), "--no-serve"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown action 'teleport'" in result.stderr
    assert "timeline.4" in result.stderr


def test_serving_demo_prints_a_login_runs_at_real_speed_and_cleans_up(tmp_path: Path) -> None:
    """Served, the demo prints central's URL and a login that works; after the scenario the
    clock runs at real speed (two readings a second apart are about a second apart, not ten
    minutes); stopped, it removes the work directory it made under the temporary directory."""
    import os
    import signal
    import time

    import httpx

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "homecall.cli", "demo",
         "--scenario", str(ROOT / "scenarios" / "on-time-and-late.json"), "--speed", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while not any(line.startswith("Demo login:") for line in lines):
            assert time.monotonic() < deadline, "no demo login printed"
            line = demo.stdout.readline()
            assert line, f"demo exited: {demo.stderr.read() if demo.stderr else ''}"[-3000:]
            lines.append(line)
        url = next(line for line in lines if line.startswith("Central is running:")).split()[3]
        username, _, password = next(
            line for line in lines if line.startswith("Demo login:")).split()[2:5]
        assert list(tmp_path.glob("homecall-demo-*")), "the demo's work directory"
        with httpx.Client(base_url=url, timeout=10) as client:
            login = client.post("/api/auth/login", json={
                "username": username, "password": password, "session": "bearer"})
            assert login.status_code == 200, login.text
            headers = {"authorization": f"Bearer {login.json()['token']}"}
            assert client.get("/api/alerts", headers=headers).status_code == 200
            first = datetime.fromisoformat(client.get("/api/health").json()["time"])
            time.sleep(2.0)  # real time passing, not synchronisation
            second = datetime.fromisoformat(client.get("/api/health").json()["time"])
        assert timedelta(seconds=1) <= second - first < timedelta(seconds=60)
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    assert demo.returncode == 0
    assert not list(tmp_path.glob("homecall-demo-*")), "the demo left its work directory"
