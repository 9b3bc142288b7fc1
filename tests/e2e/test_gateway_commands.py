"""A command from central, end to end: an installer sends ``identify`` through the API, the
real gateway process gets it over real Mosquitto, the simulated hub shows the pattern, and
the gateway's result is on ``GET /api/gateways`` (matched by the command's id). The
commands that did nothing are gone: asking for one is a 422 naming what is allowed; an
unknown gateway is 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.hub import SimulatedHub
from homecall.clock import ScaledClock
from orchestration.stack import Stack
from tests.conftest import wait_for

GW = "gw-command-1"


@pytest.fixture
def stack_with_hub(tmp_path: Path) -> Iterator[tuple[Stack, SimulatedHub]]:
    hub = SimulatedHub(tmp_path / "dev" / "hub", heartbeat_s=0.5)
    hub.start()
    try:
        with Stack(tmp_path / "stack", ScaledClock(datetime.now(UTC), 1.0).spec(),
                   heartbeat_s=1.0) as stack:
            stack.start_broker()
            stack.start_central()
            stack.add_gateway(GW, {"hub": hub.link_path})
            stack.start_gateway(GW)
            wait_for(lambda: _gateway(stack) is not None and "STATE" in hub.commands_seen,
                     timeout=60, message="the gateway online with its hub")
            yield stack, hub
    finally:
        hub.stop()


def _gateway(stack: Stack) -> dict[str, Any] | None:
    found = [g for g in stack.http.get("/api/gateways").json() if g["id"] == GW]
    return found[0] if found and found[0]["state"] == "online" else None


def test_identify_reaches_the_hub_and_its_result_comes_back(
    stack_with_hub: tuple[Stack, SimulatedHub],
) -> None:
    stack, hub = stack_with_hub
    before = len(hub.feedback_log)
    reply = stack.http.post(f"/api/gateways/{GW}/commands", json={"command": "identify"})
    assert reply.status_code == 202, reply.text
    command_id = reply.json()["id"]
    wait_for(lambda: len(hub.feedback_log) > before, timeout=30,
             message="the hub to show the identify pattern")
    result = wait_for(lambda: ((_gateway(stack) or {}).get("last_command") or {})
                      if ((_gateway(stack) or {}).get("last_command") or {}).get("id")
                      == command_id else None,
                      timeout=30, message="the command's result on the gateway")
    assert (result["command"], result["result"]) == ("identify", "done")

    refused = stack.http.post(f"/api/gateways/{GW}/commands", json={"command": "resync"})
    assert refused.status_code == 422 and "identify" in refused.text
    unknown = stack.http.post("/api/gateways/gw-nobody/commands", json={"command": "identify"})
    assert unknown.status_code == 404
