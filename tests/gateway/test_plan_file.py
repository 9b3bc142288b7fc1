"""An installer can start a gateway with a plan file before central has sent one: taps are
matched against it at once, and central's own plan (even version 1) replaces it later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from firmware_sim.em4100 import SimulatedRfidReader
from homecall.clock import ScaledClock
from homecall.plan import DocumentCarer, PlanDocument, Visit
from orchestration.stack import Stack
from tests.conftest import wait_for

GW = "gw-planfile-1"
FOB = "em4100:0F00A1B2C3"


def events(stack: Stack) -> list[dict[str, object]]:
    return stack.http.get("/api/events", params={"gateway": GW}).json()  # type: ignore[no-any-return]


def test_plan_file_in_force_until_central_sends_its_plan(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    local_now = now.astimezone(ZoneInfo("Europe/London")).replace(tzinfo=None, microsecond=0)
    document = PlanDocument(
        gateway=GW, service_users=("su-1",), carers=(DocumentCarer(id="c-1", tags=(FOB,)),),
        visits=(Visit(id="v-file", service_user="su-1", start=local_now, duration_min=30),),
    )
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(document.model_dump_json())
    reader = SimulatedRfidReader(str(tmp_path / "dev" / "rfid"))
    reader.start()
    with Stack(tmp_path / "stack", ScaledClock(now, 1.0).spec(), heartbeat_s=0.5) as stack:
        stack.start_broker()
        stack.start_central()
        stack.add_gateway(GW, {"rfid": Path(reader.link_path)},
                          extra_args=["--plan", str(plan_file)])
        stack.start_gateway(GW)
        wait_for(lambda: any(e["type"] == "plan_applied" for e in events(stack)), timeout=30,
                 message="the file plan applied")
        applied = next(e for e in events(stack) if e["type"] == "plan_applied")
        assert applied["data"]["source"] == "file"

        reader.tap(FOB)
        wait_for(lambda: any(e["type"] == "arrival" for e in events(stack)), timeout=30,
                 message="arrival matched against the file plan")
        arrival = next(e for e in events(stack) if e["type"] == "arrival")
        assert (arrival["visit_id"], arrival["carer_id"]) == ("v-file", "c-1")

        later = document.model_copy(update={"visits": (
            Visit(id="v-central", service_user="su-1", start=local_now + timedelta(hours=1),
                  duration_min=30),)})
        assert stack.upload_plan(later)["version"] == 1
        wait_for(lambda: any(e["type"] == "plan_applied" and e["data"]["source"] == "central"
                             for e in events(stack)), timeout=30,
                 message="central's version 1 to replace the file plan")
    reader.stop()
