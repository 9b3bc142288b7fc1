"""A private Mosquitto broker with per-gateway identities, for the demo, tests and benches.

:class:`MosquittoBroker` writes a config into its own directory (a free loopback port,
``allow_anonymous false``, a password file with one user per gateway plus ``central``, and a
pattern ACL that lets each gateway write only under its own ``gw/{id}/`` and read only its
own ``plan``, ``cmd`` and ``ack``), starts ``mosquitto`` and can stop, restart or kill it.
Production installs use the same ACL (see docs/security.md); only the process handling is
for tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from homecall import HomeCallError
from homecall.wire import TOPIC_ROOT, validate_gateway_id

CENTRAL_USER = "central"


class BrokerError(HomeCallError):
    """Mosquitto is missing or would not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str:
    candidates = (shutil.which("mosquitto"), "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto not found: run `make setup` (installs Debian's mosquitto)")


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def acl_text() -> str:
    root = TOPIC_ROOT
    return (
        f"# central reads every gateway's events and status, writes ack/plan/cmd\n"
        f"user {CENTRAL_USER}\n"
        f"topic readwrite {root}/#\n"
        f"\n"
        f"# each gateway: its own topics only (%u = the authenticated username = gateway id)\n"
        f"pattern write {root}/%u/events\n"
        f"pattern write {root}/%u/status\n"
        f"pattern read {root}/%u/plan\n"
        f"pattern read {root}/%u/cmd\n"
        f"pattern read {root}/%u/ack\n"
    )


class MosquittoBroker:
    """One mosquitto process on 127.0.0.1 with its own config, passwords and ACL."""

    def __init__(self, workdir: str | Path, port: int | None = None,
                 persistence: bool = True) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.add_user(CENTRAL_USER)

    @property
    def password_file(self) -> Path:
        return self.workdir / "passwords"

    def add_user(self, username: str, password: str | None = None) -> str:
        """Create (or replace) a broker identity; returns its password."""
        if username != CENTRAL_USER:
            validate_gateway_id(username)
        password = password or secrets.token_urlsafe(18)
        self.passwords[username] = password
        if self.password_file.exists() or len(self.passwords) > 1:
            self._write_passwords()
        return password

    def credentials_file(self, username: str) -> Path:
        path = self.workdir / f"{username}.secret"
        path.write_text(self.passwords[username])
        path.chmod(0o600)
        return path

    def _write_passwords(self) -> None:
        lines = [f"{user}:{pw}" for user, pw in self.passwords.items()]
        self.password_file.write_text("\n".join(lines) + "\n")
        self.password_file.chmod(0o600)
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([passwd, "-U", str(self.password_file)], check=True,
                       capture_output=True)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)  # reload passwords and ACL

    def _write_config(self) -> Path:
        (self.workdir / "acl").write_text(acl_text())
        self._write_passwords()
        config = self.workdir / "mosquitto.conf"
        config.write_text(
            # Run as whoever started us (mosquitto would otherwise drop root to 'mosquitto',
            # which cannot read this private directory).
            f"user {_current_user()}\n"
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.workdir / 'acl'}\n"
            f"persistence {'true' if self.persistence else 'false'}\n"
            f"persistence_location {self.workdir}/\n"
            f"autosave_interval 1\n"
            f"max_queued_messages 100000\n"
            f"max_inflight_messages 0\n"
            # Forward each message at once: Nagle + delayed ACK adds ~40 ms on loopback.
            f"set_tcp_nodelay true\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\n"
            f"log_type error\nlog_type warning\nlog_type notice\n"
        )
        return config

    def start(self, timeout_s: float = 10.0) -> None:
        config = self._write_config()
        self.process = subprocess.Popen(
            [find_mosquitto(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "mosquitto.stderr", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self.process.returncode}: "
                    f"{(self.workdir / 'mosquitto.stderr').read_text()[-500:]}"
                )
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), timeout=0.2
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, wipe_persistence: bool = False) -> None:
        self.stop()
        if wipe_persistence:
            for db in self.workdir.glob("*.db"):
                db.unlink()
        self.start()

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
