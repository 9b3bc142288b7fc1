"""Fixtures for the hardware tests: simulated devices on real ptys, real drivers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.hub import SimulatedHub
from firmware_sim.pn532 import SimulatedPn532
from gateway.drivers.nfc_reader import NfcReaderDriver
from gateway.drivers.sensor_hub import SensorHubDriver
from homecall.carer_token import generate_signing_key
from homecall.clock import ManualClock
from tests.conftest import wait_for as shared_wait_for


def wait_for(predicate: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 5 ms until it is truthy; fail after ``timeout`` seconds."""
    return shared_wait_for(predicate, timeout=timeout, interval=0.005, message=what)


class Sink:
    """Thread-safe observation collector, like the daemon's enqueueing sink."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[Any] = []
        self.times: list[float] = []

    def __call__(self, observation: Any) -> None:
        with self._lock:
            self.items.append(observation)
            self.times.append(time.monotonic())

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [o for o in self.items if isinstance(o, kind)]

    def wait(self, kind: type, count: int = 1, timeout: float = 3.0) -> list[Any]:
        return wait_for(
            lambda: len(self.of(kind)) >= count and self.of(kind), timeout, kind.__name__
        )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def hub_path(tmp_path: Path) -> Path:
    return tmp_path / "dev" / "hub"


@pytest.fixture
def hub_sim(hub_path: Path, clock: ManualClock) -> Iterator[SimulatedHub]:
    hub = SimulatedHub(hub_path, clock=clock, doors=("front", "back"), heartbeat_s=0.1)
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_driver(hub_sim: SimulatedHub, clock: ManualClock, sink: Sink) -> Iterator[SensorHubDriver]:
    driver = SensorHubDriver(
        str(hub_sim.link_path), clock, sink, heartbeat_timeout_s=0.6, reconnect_max_s=0.1
    )
    driver.start()
    wait_for(lambda: driver.status().state == "ok" and driver.firmware, what="hub connected")
    yield driver
    driver.stop()


@pytest.fixture(scope="session")
def keypair() -> tuple[bytes, bytes]:
    return generate_signing_key()


@pytest.fixture
def nfc_sim(tmp_path: Path, clock: ManualClock) -> Iterator[SimulatedPn532]:
    reader = SimulatedPn532(tmp_path / "dev" / "nfc", clock=clock)
    reader.start()
    yield reader
    reader.stop()


@pytest.fixture
def nfc_driver(
    nfc_sim: SimulatedPn532, clock: ManualClock, sink: Sink, keypair: tuple[bytes, bytes]
) -> Iterator[NfcReaderDriver]:
    driver = NfcReaderDriver(
        str(nfc_sim.link_path), clock, sink, token_public_key=keypair[1], reconnect_max_s=0.1
    )
    driver.start()
    wait_for(lambda: driver.status().state == "ok", what="nfc reader open")
    yield driver
    driver.stop()
