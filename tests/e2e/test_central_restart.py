"""Central killed (-9) in the middle of a run and restarted: the gateway keeps everything in
its journal until central acks it, so central ends with every event exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from firmware_sim.em4100 import SimulatedRfidReader
from homecall.clock import ScaledClock
from homecall.plan import DocumentCarer, PlanDocument
from orchestration.stack import Stack
from tests.conftest import wait_for

GW = "gw-restart-1"


def tap_all(reader: SimulatedRfidReader, first: int, last: int) -> None:
    for i in range(first, last):
        reader.tap(f"em4100:{i:010X}")
        time.sleep(0.02)


def test_central_crash_mid_run_loses_nothing(tmp_path: Path, database_url: str) -> None:
    """On each engine central supports (``database_url``: SQLite file, PostgreSQL)."""
    clock = ScaledClock(datetime.now(UTC), 1.0)
    reader = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    reader.start()
    with Stack(tmp_path / "stack", clock.spec(), heartbeat_s=0.5,
               central_db=database_url) as stack:
        stack.start_broker()
        stack.start_central()
        stack.upload_plan(PlanDocument(
            gateway=GW, service_users=("su-1",),
            carers=(DocumentCarer(id="c-1", tags=("em4100:FFFFFFFFFF",)),),
        ))
        stack.add_gateway(GW, {"rfid": Path(reader.link_path)})
        stack.start_gateway(GW)
        wait_for(lambda: (stack.gateway_view(GW) or {}).get("state") == "online", timeout=30,
                 message="gateway online")

        tap_all(reader, 1, 16)
        wait_for(lambda: (stack.gateway_view(GW) or {}).get("contiguous_seq", 0) > 5,
                 timeout=30, message="central to store the first taps")
        stack.kill_central()
        tap_all(reader, 16, 31)  # central is down: these wait in the gateway's journal
        stack.start_central()
        tap_all(reader, 31, 41)
        assert stack.wait_delivered(GW, timeout_s=60)

        alerts = stack.http.get("/api/alerts", params={"gateway": GW}).json()
        unknown = [a for a in alerts if a["type"] == "unknown_tag"]
        assert len(unknown) == 40
        assert len({a["data"]["tag"] for a in unknown}) == 40  # one per distinct fob
        events = stack.http.get("/api/events", params={"gateway": GW, "limit": 5000}).json()
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        report = stack.report(GW)
        assert report["events_lost"] == 0
        assert report["events_duplicated"] == 0
    reader.stop()
