"""The rules engine's memory survives kill -9: a carer who tapped in before the gateway was
killed taps out after it restarts, and that second tap is a departure, not a new arrival.
Also the journalled form of engine inputs round-trips exactly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from firmware_sim.em4100 import SimulatedRfidReader
from gateway.rules.codec import decode_input, encode_input
from gateway.rules.inputs import ClockStatus
from homecall.clock import ScaledClock
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import DocumentCarer, PlanDocument, Visit
from orchestration.stack import Stack
from tests.conftest import wait_for

GW = "gw-engine-1"
FOB = "em4100:0F00A1B2C3"


def test_engine_inputs_round_trip() -> None:
    at = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
    for item in (None, TagRead(FOB, at, "rfid"), TagRead("nfc:5A3B2C1D", at, "nfc", "c-9"),
                 ContactChange("door", "back", True, at), ButtonPress("no_reply", at),
                 ClockStatus(False)):
        assert decode_input(encode_input(item, at)) == (item, at)


def test_check_in_survives_gateway_kill_9(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    clock = ScaledClock(now, 1.0)
    local_now = now.astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None, microsecond=0)
    reader = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    reader.start()
    with Stack(tmp_path / "stack", clock.spec(), heartbeat_s=0.5) as stack:
        stack.start_broker()
        stack.start_central()
        stack.upload_plan(PlanDocument(
            gateway=GW, service_users=("su-1",),
            carers=(DocumentCarer(id="c-1", tags=(FOB,)),),
            policy={"debounce_s": 1},  # the carer taps out seconds later, not after 30 min
            visits=(Visit(id="v-now", service_user="su-1", start=local_now + timedelta(minutes=5),
                          duration_min=30, carers=("c-1",)),),
        ))
        stack.add_gateway(GW, {"rfid": Path(reader.link_path)})
        stack.start_gateway(GW)
        wait_for(lambda: (stack.gateway_view(GW) or {}).get("plan_version") == 1 and
                 any(e["type"] == "plan_applied" for e in
                     stack.http.get("/api/events", params={"gateway": GW}).json()),
                 timeout=30, message="gateway running the plan")

        reader.tap(FOB)
        wait_for(lambda: stack.http.get("/api/visits").json()[0]["status"] == "in_progress",
                 timeout=30, message="arrival at central")
        stack.crash_gateway(GW)  # kill -9
        stack.start_gateway(GW)
        wait_for(lambda: (stack.gateway_view(GW) or {}).get("state") == "online", timeout=30,
                 message="gateway back")
        time.sleep(1.5)  # past the debounce; the new process reopens the reader link
        reader.tap(FOB)
        assert stack.wait_delivered(GW, timeout_s=60)
        visit = stack.http.get("/api/visits").json()[0]
        # In and out within 10 minutes with no door used is an aborted call: the
        # restarted engine knew the carer was checked in, so the tap closed the attendance.
        assert visit["status"] == "no_access"
        assert len(visit["attendances"]) == 1
        assert visit["attendances"][0]["departed"] is not None
        types = [e["type"] for e in stack.http.get("/api/events", params={"gateway": GW}).json()]
        assert types.count("arrival") == 1 and types.count("departure") == 1
    reader.stop()
