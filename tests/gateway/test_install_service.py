"""Running the gateway as a service on a Pi: ``install-service`` writes the systemd unit,
udev names and log rotation into a root directory, and the real gateway process tells
systemd it is ready and feeds the watchdog from its heartbeat (``sd_notify`` over a real
datagram socket)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

from homecall.cli import main
from orchestration.broker import free_port
from tests.conftest import wait_for


def test_unit_udev_rules_and_log_rotation_are_written(tmp_path: Path) -> None:
    assert main(["gateway", "install-service", "--root", str(tmp_path),
                 "--hub-serial", "HUB0042"]) == 0
    unit = (tmp_path / "etc/systemd/system/homecall-gateway.service").read_text()
    for line in ("Type=notify", "User=homecall", "SupplementaryGroups=dialout",
                 "Restart=on-failure", "WatchdogSec=60", "NoNewPrivileges=true",
                 "gateway run --config /etc/homecall/gateway.toml"):
        assert line in unit, line
    rules = (tmp_path / "etc/udev/rules.d/99-homecall.rules").read_text()
    assert 'KERNEL=="ttyAMA0", SYMLINK+="homecall-rfid"' in rules
    assert ('ATTRS{idVendor}=="10c4", ATTRS{idProduct}=="ea60", ATTRS{serial}=="HUB0042", '
            'SYMLINK+="homecall-hub"') in rules
    assert 'SYMLINK+="homecall-nfc"' in rules
    assert "rotate 14" in (tmp_path / "etc/logrotate.d/homecall-gateway").read_text()


def test_bad_usb_ids_are_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "homecall.cli", "gateway", "install-service",
         "--root", str(tmp_path), "--hub-usb", "cp2102"], capture_output=True, text=True)
    assert result.returncode != 0
    assert "--hub-usb must be VVVV:PPPP" in result.stderr + result.stdout


def test_the_gateway_notifies_systemd_ready_and_feeds_the_watchdog(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(0.5)
    received: list[str] = []
    gateway = subprocess.Popen(
        [sys.executable, "-m", "homecall.cli", "gateway", "run", "--id", "gw-notify-1",
         "--journal", str(tmp_path / "journal.db"), "--mqtt-port", str(free_port()),
         "--heartbeat", "0.2", "--config", str(tmp_path / "none.toml")],
        env={**os.environ, "NOTIFY_SOCKET": str(path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def heard(state: str) -> bool:
        with contextlib.suppress(TimeoutError):
            received.append(listener.recv(256).decode())
        return state in received

    try:
        wait_for(lambda: heard("READY=1"), timeout=60, message="READY=1")
        wait_for(lambda: heard("WATCHDOG=1"), timeout=30, message="WATCHDOG=1")
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
        wait_for(lambda: heard("STOPPING=1"), timeout=10, message="STOPPING=1")
        listener.close()
