"""The gateway's settings and its ``homecall gateway run`` command line.

One settings object, :class:`GatewaySettings`, fed (strongest first) by the command line,
environment variables (``HOMECALL_GATEWAY_<NAME>``, e.g. ``HOMECALL_GATEWAY_MQTT_HOST``) and a
TOML file (``/etc/homecall/gateway.toml``, or ``--config``; keys are the field names below),
and validated as one pydantic model. :func:`run` turns them into the daemon's
:class:`~gateway.daemon.GatewayConfig` and runs it. The three sources are merged here rather
than by pydantic-settings (which central uses): on the gateway it would bring asyncio, dotenv
and importlib.metadata into a process that must stay small on a Raspberry Pi, for the work of
a dozen lines (the standard library's ``tomllib`` reads the file).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import GatewayError

log = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = Path("/etc/homecall/gateway.toml")
ENV_PREFIX = "HOMECALL_GATEWAY_"


class SettingsError(GatewayError):
    """The config file cannot be read."""


class GatewaySettings(BaseModel):
    """Everything a gateway is configured with."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="gateway id ([a-z0-9-]{3,64})")
    journal: Path = Field(description="journal SQLite file")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_user: str | None = None
    mqtt_password_file: Path | None = None
    #: Mutual TLS (an enrolled gateway: ``homecall gateway provision`` writes these): the
    #: CA that signed the broker's certificate, and this gateway's certificate and key.
    mqtt_tls_ca: Path | None = None
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    rfid: str | None = None
    #: identical consecutive frames that make a 125 kHz tap (2 guards against line noise;
    #: 1 only for a reader set to send a single frame per presentation)
    rfid_confirm_frames: int = Field(2, ge=1, le=5)
    hub: str | None = None
    nfc: str | None = None
    plan: Path | None = None
    clock: str = "system"
    clock_ok: Literal["auto", "yes", "no"] = "auto"
    heartbeat: float = Field(10.0, gt=0)
    journal_sync: Literal["FULL", "NORMAL", "EXTRA"] = "FULL"
    device_state_file: Path | None = None
    token_public_key: Path | None = None
    plan_public_key: Path | None = None
    journal_budget: int | None = None
    journal_max_bytes: int | None = None
    reconnect_max: float = Field(60.0, gt=0)
    reconnect_waiting_max: float = Field(2.0, gt=0)

    @classmethod
    def load(cls, config_file: Path | None = None, **given: Any) -> GatewaySettings:
        """Settings from ``given`` (None values are not given), over the environment
        (``HOMECALL_GATEWAY_<NAME>``, any case), over the config file (absent: skipped).
        :class:`SettingsError` if the file cannot be read or is not TOML; pydantic's
        ``ValidationError`` for a bad or unknown setting."""
        path = config_file or DEFAULT_CONFIG_FILE
        values: dict[str, Any] = {}
        if path.exists():
            try:
                values.update(tomllib.loads(path.read_text()))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
                raise SettingsError(f"config file {path}: {err}") from err
        environment = {key.upper(): value for key, value in os.environ.items()}
        for name in cls.model_fields:
            value = environment.get(ENV_PREFIX + name.upper())
            if value is not None:
                values[name] = value
        values.update((name, value) for name, value in given.items() if value is not None)
        return cls.model_validate(values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--config", type=Path, help=f"TOML settings file (default {DEFAULT_CONFIG_FILE})")
    add("--id", help="gateway id ([a-z0-9-]{3,64})")
    add("--journal", type=Path, help="journal SQLite file")
    add("--mqtt-host")
    add("--mqtt-port", type=int)
    add("--mqtt-user", help="broker username (default: the gateway id)")
    add("--mqtt-password-file", type=Path,
        help="file holding the password (password login: demo and development only)")
    add("--mqtt-tls-ca", type=Path, help="CA certificate for the broker (mutual TLS)")
    add("--mqtt-tls-cert", type=Path, help="this gateway's certificate (mutual TLS)")
    add("--mqtt-tls-key", type=Path, help="this gateway's private key (mutual TLS)")
    add("--rfid", help="125 kHz reader serial path or pyserial URL")
    add("--rfid-confirm-frames", type=int,
        help="identical consecutive frames that make a tap (default 2; 1 only for a reader "
             "that sends one frame per presentation: line noise can then misread a fob)")
    add("--hub", help="sensor hub serial path or pyserial URL")
    add("--nfc", help="NFC reader: tty:AMA0:pn532, usb, or a pty path")
    add("--plan", type=Path, help="plan file to use until central sends one")
    add("--clock", default=os.environ.get("HOMECALL_CLOCK"),
        help="'system' or 'scaled:START:SPEED:ANCHOR' (env HOMECALL_CLOCK)")
    add("--clock-ok", choices=["auto", "yes", "no"])
    add("--heartbeat", type=float, help="seconds (real time)")
    add("--journal-sync", choices=["FULL", "NORMAL", "EXTRA"])
    add("--device-state-file", type=Path,
        help="where `homecall gateway devices` reads device health "
             "(default: devices.json beside the journal)")
    add("--token-public-key", type=Path, help="central's carer-token public key")
    add("--plan-public-key", type=Path,
        help="central's Ed25519 public key (raw or hex) that plans must be signed "
             "with (default: --token-public-key; unset: plans are not checked)")
    add("--journal-budget", type=int, metavar="BYTES",
        help="shed low-value telemetry when the journal holds more than this")
    add("--journal-max-bytes", type=int, metavar="BYTES",
        help="hard journal size cap (SQLite max_page_count), as a full disk")
    add("--reconnect-max", type=float, metavar="S",
        help="cap of the jittered exponential reconnect back-off (seconds)")
    add("--reconnect-waiting-max", type=float, metavar="S",
        help="the cap while events wait to be delivered (default 2 s)")


def run(args: argparse.Namespace) -> int:
    from gateway.daemon import GatewayConfig, GatewayDaemon
    from gateway.delivery.outbox import BrokerSettings
    from homecall.clock import clock_from_spec
    from homecall.plan import PlanError, read_key_file
    from homecall.wire import WireError

    given = {name: getattr(args, name, None) for name in GatewaySettings.model_fields}
    try:
        settings = GatewaySettings.load(args.config, **given)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        log.error("gateway settings: %s", problems)
        return 2
    except SettingsError as err:
        log.error("gateway settings: %s", err)
        return 2
    try:
        password = (settings.mqtt_password_file.read_text().strip()
                    if settings.mqtt_password_file else None)
        token_key = settings.token_public_key.read_bytes() if settings.token_public_key else None
        plan_key_file = settings.plan_public_key or settings.token_public_key
        plan_key = read_key_file(plan_key_file) if plan_key_file else None
    except (PlanError, OSError) as err:
        log.error("gateway settings: %s", err)
        return 2
    config = GatewayConfig(
        gateway_id=settings.id,
        journal_path=settings.journal,
        broker=BrokerSettings(
            host=settings.mqtt_host, port=settings.mqtt_port,
            username=settings.mqtt_user or (settings.id if password else None),
            password=password,
            reconnect_base_s=min(1.0, settings.reconnect_max),
            reconnect_max_s=settings.reconnect_max,
            reconnect_waiting_max_s=settings.reconnect_waiting_max,
            tls_ca=str(settings.mqtt_tls_ca) if settings.mqtt_tls_ca else None,
            tls_cert=str(settings.mqtt_tls_cert) if settings.mqtt_tls_cert else None,
            tls_key=str(settings.mqtt_tls_key) if settings.mqtt_tls_key else None,
        ),
        rfid_path=settings.rfid, rfid_confirm_frames=settings.rfid_confirm_frames,
        hub_path=settings.hub, nfc_path=settings.nfc,
        plan_file=settings.plan, clock_ok=settings.clock_ok, heartbeat_s=settings.heartbeat,
        journal_sync=settings.journal_sync,
        device_state_file=settings.device_state_file or settings.journal.parent / "devices.json",
        token_public_key=token_key, plan_public_key=plan_key,
        journal_budget_bytes=settings.journal_budget,
        journal_max_bytes=settings.journal_max_bytes,
    )
    quiet_scheduler_logs()
    try:
        daemon = GatewayDaemon(config, clock_from_spec(settings.clock))
    except (GatewayError, WireError) as err:
        log.error("%s", err)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: daemon.stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.stop())
    daemon.run()
    return 0


def quiet_scheduler_logs() -> None:
    """APScheduler logs every job run at INFO ("Running job …", "executed successfully"):
    the heartbeat alone would drown what happened. Keep its warnings and errors."""
    for name in ("apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(name).setLevel(logging.WARNING)
