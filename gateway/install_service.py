"""``homecall gateway install-service``: what a Raspberry Pi needs to run the gateway as a
service, written under ``--root`` (``/`` on the Pi; a temporary directory in tests):

- ``etc/systemd/system/homecall-gateway.service``: runs ``homecall gateway run`` as the
  unprivileged ``homecall`` user in the ``dialout`` group (serial ports), restarts on
  failure, and is restarted by systemd's watchdog if the core loop stops feeding it;
- ``etc/udev/rules.d/99-homecall.rules``: stable names for the devices,
  ``/dev/homecall-rfid`` (the 125 kHz reader on the Pi's UART), ``/dev/homecall-hub`` and
  ``/dev/homecall-nfc`` (USB serial adapters, by vendor/product id and, when given, serial
  number), so a replugged adapter keeps its name;
- ``etc/logrotate.d/homecall-gateway``: the gateway's log file rotated daily, 14 kept.

It prints the commands that create the user and enable the service; it does not run them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

UNIT = """[Unit]
Description=HomeCall home gateway (visit monitoring)
Documentation=https://example.invalid/homecall/docs/install-raspberry-pi.md
After=network-online.target time-sync.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User={user}
Group={user}
SupplementaryGroups=dialout
ExecStart={executable} gateway run --config {config}
Restart=on-failure
RestartSec=5
WatchdogSec={watchdog}
StateDirectory=homecall
LogsDirectory=homecall
Environment=PYTHONUNBUFFERED=1
StandardOutput=append:/var/log/homecall/gateway.log
StandardError=append:/var/log/homecall/gateway.log
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
ReadWritePaths=/var/lib/homecall /var/log/homecall
PrivateTmp=true

[Install]
WantedBy=multi-user.target
"""

UDEV = """# HomeCall: stable device names (written by homecall gateway install-service)
# 125 kHz RDM6300 reader on the Pi's own UART (GPIO 14/15)
KERNEL=="{rfid_kernel}", SYMLINK+="homecall-rfid", GROUP="dialout", MODE="0660"
# sensor hub on a USB serial adapter
{hub_rule}
# PN532 NFC reader on a USB serial adapter
{nfc_rule}
"""

LOGROTATE = """/var/log/homecall/gateway.log {
    daily
    rotate 14
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="write under this directory instead of / (for testing)")
    parser.add_argument("--user", default="homecall")
    parser.add_argument("--config", type=Path, default=Path("/etc/homecall/gateway.toml"))
    parser.add_argument("--watchdog-s", type=int, default=60,
                        help="systemd restarts the gateway if its core loop is silent this "
                             "long (the heartbeat feeds it; keep it well above --heartbeat)")
    parser.add_argument("--rfid-kernel", default="ttyAMA0",
                        help="the reader's kernel name (the Pi's UART: ttyAMA0 or ttyS0)")
    parser.add_argument("--hub-usb", default="10c4:ea60",
                        help="hub adapter's USB vendor:product (default CP210x)")
    parser.add_argument("--hub-serial", help="hub adapter's USB serial number, if several")
    parser.add_argument("--nfc-usb", default="1a86:7523",
                        help="NFC adapter's USB vendor:product (default CH340)")
    parser.add_argument("--nfc-serial", help="NFC adapter's USB serial number, if several")


def _usb(value: str, what: str) -> tuple[str, str]:
    vendor, _, product = value.partition(":")
    if len(vendor) != 4 or len(product) != 4 or not all(
            c in "0123456789abcdef" for c in (vendor + product).lower()):
        raise SystemExit(f"homecall gateway install-service: {what} must be VVVV:PPPP "
                         f"(hex USB ids), not {value!r}")
    return vendor.lower(), product.lower()


def write_files(args: argparse.Namespace) -> list[Path]:
    hub_vendor, hub_product = _usb(args.hub_usb, "--hub-usb")
    nfc_vendor, nfc_product = _usb(args.nfc_usb, "--nfc-usb")
    executable = shutil.which("homecall") or f"{sys.prefix}/bin/homecall"

    def usb_rule(vendor: str, product: str, serial: str | None, name: str) -> str:
        match = f'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vendor}", ATTRS{{idProduct}}=="{product}"'
        if serial:
            match += f', ATTRS{{serial}}=="{serial}"'
        return f'{match}, SYMLINK+="{name}", GROUP="dialout", MODE="0660"'

    files = {
        "etc/systemd/system/homecall-gateway.service": UNIT.format(
            user=args.user, executable=executable, config=args.config,
            watchdog=args.watchdog_s),
        "etc/udev/rules.d/99-homecall.rules": UDEV.format(
            rfid_kernel=args.rfid_kernel,
            hub_rule=usb_rule(hub_vendor, hub_product, args.hub_serial, "homecall-hub"),
            nfc_rule=usb_rule(nfc_vendor, nfc_product, args.nfc_serial, "homecall-nfc")),
        "etc/logrotate.d/homecall-gateway": LOGROTATE,
    }
    written = []
    for relative, text in files.items():
        path = args.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    try:
        written = write_files(args)
    except OSError as err:
        print(f"homecall gateway install-service: {err}")
        return 1
    for path in written:
        print(f"wrote {path}")
    print(f"""Next, as root:
  useradd --system --home /var/lib/homecall --shell /usr/sbin/nologin {args.user}
  usermod -aG dialout {args.user}
  udevadm control --reload && udevadm trigger
  systemctl daemon-reload && systemctl enable --now homecall-gateway""")
    return 0
