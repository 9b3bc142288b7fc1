"""``homecall bench hardware``: device-to-sink latency of the real drivers on simulated devices.

Owns one measurement: how long from a physical action on a simulated device (a fob tapped
on the 125 kHz reader, a card or phone presented to the PN532, a contact or button on the
hub) until the driver hands the observation to its sink, and from ``feedback()`` until the
hub has the LED command. It uses the same drivers and the same byte-level simulators as
the tests, over real ptys, with nfcpy's unmodified pn532 driver. Results print as a table;
``--write-docs`` replaces the ``## hardware`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestration.benchmarks import write_section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--taps", type=int, default=100,
                        help="RFID and NFC taps per kind (default 100)")
    parser.add_argument("--events", type=int, default=200, help="hub events per kind (200)")
    parser.add_argument("--json", action="store_true", help="print JSON results")
    parser.add_argument(
        "--write-docs",
        type=Path,
        metavar="MD",
        default=None,
        help="replace the '## hardware' section of this Markdown file (docs/benchmarks.md)",
    )


class _Sink:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: list[tuple[float, Any]] = []

    def __call__(self, obs: Any) -> None:
        with self.cond:
            self.items.append((time.monotonic(), obs))
            self.cond.notify_all()

    def wait_new(self, start: int, kind: type, timeout: float = 3.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, obs in self.items[start:]:
                    if isinstance(obs, kind):
                        return t
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kind.__name__} within {timeout}s")
                self.cond.wait(remaining)


def _summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) >= 2 else ms[0]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(ms[-1], 2),
    }


def _measure(n: int, act: Callable[[int], None], sink: _Sink, kind: type) -> list[float]:
    samples = []
    rng = random.Random(1)
    for i in range(n):
        time.sleep(rng.uniform(0.0, 0.06))  # arrive at a random point of the poll cycle
        start_index = len(sink.items)
        started = time.monotonic()
        act(i)
        samples.append(sink.wait_new(start_index, kind) - started)
    return samples


def _bench_nfc(tmp: Path, taps: int) -> dict[str, dict[str, float]]:
    from firmware_sim.pn532 import SimulatedPn532
    from gateway.drivers.nfc_reader import NfcReaderDriver
    from homecall.carer_token import generate_signing_key, sign_carer_token
    from homecall.clock import SystemClock
    from homecall.observations import TagRead

    clock = SystemClock()
    private, public = generate_signing_key()
    token = sign_carer_token(private, "c-bench", datetime.now(UTC) + timedelta(days=1))
    reader = SimulatedPn532(tmp / "nfc")
    reader.start()
    sink = _Sink()
    driver = NfcReaderDriver(str(tmp / "nfc"), clock, sink, token_public_key=public)
    driver.start()
    try:
        deadline = time.monotonic() + 5
        while driver.status().state != "ok":
            if time.monotonic() > deadline:
                raise TimeoutError("reader did not open")
            time.sleep(0.01)
        uids = [bytes.fromhex("5A000000000001"), bytes.fromhex("5A000000000002")]
        # Each phase uses its own cards: the same card presented again at once is one hold.
        token_uids = [bytes.fromhex("5A000000000003"), bytes.fromhex("5A000000000004")]

        def card(i: int) -> None:
            reader.present_card(token_uids[i % 2], token, hold_s=0.3)

        def phone(i: int) -> None:
            reader.present_phone(token, uid=bytes([0x08, 0, 0, i % 2 + 1]), hold_s=0.3)

        def card_uid_only(i: int) -> None:
            reader.present_card(uids[i % 2], None, hold_s=0.3)

        return {
            "nfc type 2 card, UID only": _summary(_measure(taps, card_uid_only, sink, TagRead)),
            "nfc type 2 card + signed token": _summary(_measure(taps, card, sink, TagRead)),
            "nfc type 4 phone + signed token": _summary(_measure(taps, phone, sink, TagRead)),
        }
    finally:
        driver.stop()
        reader.stop()


def _bench_rfid(tmp: Path, taps: int) -> dict[str, dict[str, float]]:
    from firmware_sim.em4100 import REPEAT_INTERVAL_S, SimulatedRfidReader
    from gateway.drivers.rfid_reader import RfidReaderDriver
    from homecall.clock import SystemClock
    from homecall.observations import TagRead

    reader = SimulatedRfidReader(str(tmp / "rfid"))
    reader.start()
    sink = _Sink()
    driver = RfidReaderDriver(str(tmp / "rfid"), SystemClock(), sink)
    driver.start()
    try:
        deadline = time.monotonic() + 5
        while driver.status().state != "ok":
            if time.monotonic() > deadline:
                raise TimeoutError("reader did not open")
            time.sleep(0.01)
        fobs = ["em4100:0F00A1B2C3", "em4100:1A2B3C4D5E"]  # alternate: each tap a new hold
        samples = []
        rng = random.Random(1)
        for i in range(taps):
            time.sleep(rng.uniform(0.0, 0.06))
            start_index = len(sink.items)
            tapping = threading.Thread(target=reader.tap, args=(fobs[i % 2],), daemon=True)
            started = time.monotonic()
            tapping.start()
            samples.append(sink.wait_new(start_index, TagRead) - started)
            tapping.join()  # the tap's remaining frames, before the next fob
        name = (f"rfid fob tap, first frame -> TagRead (confirmed by the repeat "
                f"{REPEAT_INTERVAL_S * 1000:.0f} ms later)")
        return {name: _summary(samples)}
    finally:
        driver.stop()
        reader.stop()


def _bench_hub(tmp: Path, events: int) -> dict[str, dict[str, float]]:
    from firmware_sim.hub import SimulatedHub
    from gateway.drivers.sensor_hub import SensorHubDriver
    from homecall.clock import SystemClock
    from homecall.observations import ButtonPress, ContactChange

    hub = SimulatedHub(tmp / "hub", heartbeat_s=1.0)
    hub.start()
    sink = _Sink()
    driver = SensorHubDriver(str(tmp / "hub"), SystemClock(), sink)
    driver.start()
    try:
        deadline = time.monotonic() + 5
        while not (driver.status().state == "ok" and driver.firmware):
            if time.monotonic() > deadline:
                raise TimeoutError("hub did not connect")
            time.sleep(0.01)
        time.sleep(0.1)  # let the initial state report settle
        results = {
            "hub door contact (incl. 40 ms debounce)": _summary(
                _measure(events, lambda i: hub.door("front", i % 2 == 0), sink, ContactChange)
            ),
            "hub button": _summary(
                _measure(events, lambda i: hub.button("no_reply"), sink, ButtonPress)
            ),
        }
        samples = []
        for _ in range(events):
            before = len(hub.feedback_log)
            started = time.monotonic()
            driver.feedback("accepted")
            while len(hub.feedback_log) < before + 2:
                if time.monotonic() - started > 3:
                    raise TimeoutError("feedback did not reach the hub")
                time.sleep(0.0005)
            samples.append(hub.feedback_log[before + 1].mono - started)
        results["carer feedback: feedback() -> hub has LED+buzzer"] = _summary(samples)
        return results
    finally:
        driver.stop()
        hub.stop()


def _markdown(results: dict[str, dict[str, float]], command: str) -> str:
    lines = [
        "## hardware",
        "",
        "Device action on the byte-level simulator (real pty, nfcpy's unmodified pn532 "
        "driver) until the driver's sink has the observation (a 125 kHz tap counts once two "
        "identical frames arrived, so it includes one reader repeat period); feedback until "
        "the simulated hub has received the LED and buzzer commands.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%d')}",
        "",
        "| measurement | n | median ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['n']} | {r['median_ms']} | {r['p99_ms']} | {r['max_ms']} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="homecall-bench-hw-") as tmp:
        results = _bench_rfid(Path(tmp), args.taps)
        results.update(_bench_nfc(Path(tmp), args.taps))
        results.update(_bench_hub(Path(tmp), args.events))
    command = f"homecall bench hardware --taps {args.taps} --events {args.events}"
    if args.json:
        print(json.dumps({"command": command, "results": results}, indent=1))
    else:
        sys.stdout.write(_markdown(results, command))
    if args.write_docs is not None:
        write_section(args.write_docs, "## hardware", _markdown(results, command))
    return 0
