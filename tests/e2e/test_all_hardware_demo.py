"""Every device of the home through the whole stack: the all-hardware scenario's actions
(NFC card, key safe, door, no-reply button, tamper, battery, unplug/replug, garbage) each
reach central as the right event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from homecall.scenario import load_scenario
from orchestration.demo import play

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def central_view(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    scenario = load_scenario(ROOT / "scenarios" / "all-hardware.json")
    report, stack = play(scenario, 600, tmp_path_factory.mktemp("all-hardware"))
    try:
        events = stack.http.get("/api/events", params={"gateway": scenario.gateway,
                                                       "limit": 5000}).json()
        gateways = stack.http.get("/api/gateways").json()
    finally:
        stack.stop()
    return {"report": report, "events": events, "gateways": gateways}


def events_of(view: dict[str, object], kind: str) -> list[dict[str, object]]:
    return [e for e in view["events"] if e["type"] == kind]  # type: ignore[union-attr,index]


def test_nfc_card_tap_records_arrival_and_departure(central_view: dict[str, object]) -> None:
    visits = {v["id"]: v for v in central_view["report"]["visits"]}  # type: ignore[index]
    am = visits["v-am"]
    assert am["status"] == "completed"
    assert am["punctuality"] == "on_time"
    assert [a["carer"] for a in am["attendances"]] == ["c-2"]
    arrival = next(e for e in events_of(central_view, "arrival") if e["visit_id"] == "v-am")
    assert arrival["data"]["source"] == "nfc"
    assert arrival["data"]["verified"] is True  # key safe and door used around the tap


def test_key_safe_and_door_changes_arrive_in_order(central_view: dict[str, object]) -> None:
    keysafe = [(e["data"]["state"], e["time"][11:16]) for e in events_of(central_view, "keysafe")]
    assert keysafe == [("open", "07:55"), ("closed", "07:57")]
    door = [(e["data"]["sensor"], e["data"]["state"], e["time"][11:16])
            for e in events_of(central_view, "door")]
    assert door == [("front", "open", "07:58"), ("front", "closed", "07:59")]


def test_no_reply_button_is_a_critical_no_access(central_view: dict[str, object]) -> None:
    assert [e["data"]["name"] for e in events_of(central_view, "button")] == ["no_reply"]
    alerts = central_view["report"]["alerts"]  # type: ignore[index]
    no_access = [a for a in alerts if a["type"] == "no_access"]
    assert [(a["visit"], a["severity"]) for a in no_access] == [("v-mid", "critical")]
    visits = {v["id"]: v for v in central_view["report"]["visits"]}  # type: ignore[index]
    assert visits["v-mid"]["status"] == "no_access"


def test_tamper_battery_and_unplug_are_device_faults_with_recovery(
    central_view: dict[str, object],
) -> None:
    assert [e["data"]["active"] for e in events_of(central_view, "tamper")] == [True, False]
    assert 3100 in [e["data"]["mv"] for e in events_of(central_view, "battery")]
    faults = [(e["data"]["device"], e["data"]["reason"]) for e in
              events_of(central_view, "device_fault")]
    assert ("hub", "battery_low") in faults
    assert ("hub", "tamper") in faults
    assert ("hub", "unplugged") in faults
    assert any(device == "rfid" and "unplugged" in reason for device, reason in faults)
    recovered = [e["data"]["device"] for e in events_of(central_view, "device_recovered")]
    assert recovered.count("hub") >= 3 and "rfid" in recovered
    # after the RFID reader came back, its next tap still registered
    arrival = next(e for e in events_of(central_view, "arrival") if e["visit_id"] == "v-mid")
    assert arrival["data"]["source"] == "rfid"


def test_garbage_is_counted_not_journalled_and_nothing_lost(
    central_view: dict[str, object],
) -> None:
    report = central_view["report"]
    assert report["events_lost"] == 0  # type: ignore[index]
    assert report["events_duplicated"] == 0  # type: ignore[index]
    gateway = central_view["gateways"][0]  # type: ignore[index]
    devices = {d["name"]: d for d in gateway["status"]["devices"]}
    assert devices["rfid"]["state"] == "ok" and devices["hub"]["state"] == "ok"
    assert "rejected" in devices["rfid"]["detail"]
    assert json.dumps(central_view["events"]).count("garbage") == 0
