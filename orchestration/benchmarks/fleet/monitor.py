"""Watching the broker and central while the fleet runs: :class:`Sampler` reads their
processes' CPU, peak RSS and open files from /proc over each phase; :class:`Monitor`, an
MQTT client with central's identity on a thread of its own, notes when the broker published
each stopped gateway's last will; :func:`http_get` and :func:`offline_alerts` read central's
HTTP API (which gateways it shows offline, when it stored their ``gateway_offline`` alerts,
its report of events lost and duplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from homecall.wire import Channel, topic
from orchestration.benchmarks.fleet.errors import FleetError
from orchestration.benchmarks.fleet.gateway import SimGateway
from orchestration.benchmarks.fleet.generator import Fleet

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _open_fds(pid: int) -> int:
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/fd"))
    return -1


class Sampler:
    """CPU (% of one core) and peak RSS of named processes over a phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0
        self.peak: dict[str, float] = {}
        self.fds: dict[str, int] = {}  # peak open files over the whole run

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        self.peak = {name: _rss_mb(pid) for name, pid in self.pids.items()}

    def sample(self) -> None:
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                self.peak[name] = max(self.peak.get(name, 0.0), _rss_mb(pid))
                self.fds[name] = max(self.fds.get(name, 0), _open_fds(pid))

    def end(self) -> dict[str, dict[str, float]]:
        self.sample()
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        out: dict[str, dict[str, float]] = {}
        for name, pid in self.pids.items():
            cpu = (_cpu_seconds(pid) - self._start[name]) / elapsed * 100
            out[name] = {"cpu_pct": round(cpu, 1), "rss_peak_mb": round(self.peak[name], 1)}
        return out


class Monitor:
    """Watches the ``status`` of the gateways about to stop (central's identity, its own client
    id) on a thread of its own, so a busy generator loop does not delay the time it records:
    when did the broker publish each one's last will."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="fleet-monitor", protocol=mqtt.MQTTv5)
        self.client.username_pw_set("central", fleet.central_password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.ready = threading.Event()
        self.subscribed = threading.Event()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        self.ready.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, codes: Any,
                      props: Any) -> None:
        self.subscribed.set()

    async def start(self) -> None:
        self.client.connect("127.0.0.1", self.fleet.port, keepalive=60)
        self.client.loop_start()
        if not await asyncio.to_thread(self.ready.wait, 60):
            raise FleetError("the status monitor could not connect to the broker")

    async def watch(self, gateways: list[SimGateway]) -> None:
        """Subscribe to these gateways' status (not all N: that would be N/heartbeat msgs/s)."""
        self.subscribed.clear()
        self.client.subscribe([(topic(g.gateway_id, Channel.STATUS), 1) for g in gateways])
        if not await asyncio.to_thread(self.subscribed.wait, 60):
            raise FleetError("the broker did not confirm the status monitor's subscription")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if b'"offline"' not in message.payload:
            return
        gw = self.fleet.by_id.get(message.topic.split("/")[-2])
        if gw is not None and gw.stopped_at is not None and gw.will_seen_at is None:
            gw.will_seen_at = time.monotonic()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def http_get(port: int, path: str, timeout_s: float = 120.0,
                    headers: dict[str, str] | None = None) -> Any:
    """GET from central's API (``headers``: the stack admin's bearer token)."""
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=timeout_s,
                                 headers=headers) as http:
        response = await http.get(path)
        response.raise_for_status()
        return response.json()


async def offline_alerts(fleet: Fleet, stopped_ids: set[str]) -> None:
    """Note when central stored a ``gateway_offline`` alert for each stopped gateway (the
    alert's ``received_at``, on this machine's clock, turned into monotonic time)."""
    import httpx

    from homecall.clock import parse_utc

    cursor: str | None = None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{fleet.http_port}", timeout=120,
                                 headers=fleet.http_headers) as http:
        while True:
            params = {"type": "gateway_offline", "limit": "500"}
            if cursor:
                params["cursor"] = cursor
            response = await http.get("/api/alerts", params=params)
            response.raise_for_status()
            offset = time.monotonic() - time.time()
            for alert in response.json():
                gw = fleet.by_id.get(alert["gateway"])
                if gw is None or alert["gateway"] not in stopped_ids or not alert["received_at"]:
                    continue
                stored_at = parse_utc(alert["received_at"]).timestamp() + offset
                if gw.central_alert_at is None and gw.stopped_at is not None \
                        and stored_at >= gw.stopped_at:  # not one from an earlier run
                    gw.central_alert_at = stored_at
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                return
