"""A gateway killed through a visit window, end to end (Mosquitto, central, the simulator
and the gateway through ``homecall demo``): central raises ``visit_late`` at the window's end
and ``visit_missed`` an hour later itself (``raised_by`` central, ``received_at`` close to
the deadline on the scenario clock); the gateway restarted afterwards replays its own and
the report still shows each once; ``gateway_offline`` is resolved on its return."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from homecall.clock import parse_utc

ROOT = Path(__file__).resolve().parents[2]


def test_central_covers_a_dead_gateways_visit_and_each_alert_exists_once(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "homecall.cli", "demo",
         "--scenario", str(ROOT / "scenarios" / "gateway-down-through-visit.json"),
         "--speed", "300", "--report-json", str(report_path), "--no-serve",
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    alerts = report["alerts"]
    by_type: dict[str, list[dict[str, object]]] = {}
    for alert in alerts:
        by_type.setdefault(str(alert["type"]), []).append(alert)

    [late] = by_type["visit_late"]
    [missed] = by_type["visit_missed"]
    assert (late["raised_by"], late["raised_at"]) == ("central", "2026-03-02T08:00:00Z")
    assert (missed["raised_by"], missed["raised_at"]) == ("central", "2026-03-02T09:00:00Z")
    for alert, deadline in ((late, "2026-03-02T08:00:00Z"), (missed, "2026-03-02T09:00:00Z")):
        # stored when staff could see it: at the deadline, not when the gateway came back
        received = parse_utc(str(alert["received_at"]))
        assert parse_utc(deadline) <= received < parse_utc(deadline) + timedelta(minutes=5)
    offline = by_type["gateway_offline"]
    assert offline and all(a["status"] == "resolved" for a in offline)
    assert offline[0]["raised_by"] == "central"
    assert report["events_lost"] == 0
    assert report["events_duplicated"] == 0
