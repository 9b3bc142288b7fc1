"""A private Mosquitto broker with per-gateway identities, for the demo, tests and benches.

:class:`MosquittoBroker` writes a config into its own directory (a free loopback port,
``allow_anonymous false``, a password file with one user per gateway plus ``central``, a
pattern ACL that lets each gateway write only under its own ``gw/{id}/`` and read only its
own ``plan``, ``cmd`` and ``ack``, HomeCall's policy plugin for what an ACL file cannot
express, and size and queue limits from the wire contract), starts ``mosquitto`` and can stop,
restart or kill it. Production installs use the same policy (:func:`policy_config_text`,
:func:`acl_text`, :func:`build_policy_plugin`; see docs/security.md); only the process
handling is for tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from homecall.wire import (
    GATEWAY_CLIENT_ID_PREFIX,
    MAX_GATEWAY_MESSAGE_BYTES,
    MAX_PLAN_MESSAGE_BYTES,
    TOPIC_ROOT,
    validate_gateway_id,
)
from orchestration import OrchestrationError

CENTRAL_USER = "central"
#: Central's broker identities: the only usernames not bound to one gateway's topics. A
#: gateway id may not start with this prefix (see :func:`MosquittoBroker.add_user`).
CENTRAL_USERS: tuple[str, ...] = (CENTRAL_USER,)

#: Largest packet the broker reads: the largest legitimate message (a signed plan) plus room
#: for the topic and MQTT 5 properties. A bigger packet closes the connection (reason 0x95).
MAX_PACKET_BYTES = MAX_PLAN_MESSAGE_BYTES + 4096
#: Messages the broker sends a client before waiting for its PUBACKs (bounds what one slow
#: subscriber holds in flight; central acks each message as it takes it).
MAX_INFLIGHT_MESSAGES = 1000
#: A client's queue beyond that (central's backlog while it is away): in messages and bytes.
#: When full, further messages for that client are dropped by the broker; gateways keep every
#: event in their journal until central's application-level ack, so they resend them later.
MAX_QUEUED_MESSAGES = 100_000
MAX_QUEUED_BYTES = 256 * 1024 * 1024
#: Publishes one gateway login may make: a burst, then so many a second (the policy plugin's
#: token bucket; beyond it a publish is refused with PUBACK 0x87 and the gateway sends it
#: again after a back-off). A gateway sends a status every 30 s and a few events an hour; the
#: burst covers the backlog of days offline. It bounds what one stolen login can put in
#: front of every other gateway's events in central's queue (docs/security.md).
GATEWAY_PUBLISH_RATE_PER_S = 100.0
GATEWAY_PUBLISH_BURST = 500

_PLUGIN_SOURCE = Path(__file__).with_name("broker_policy.c")


class BrokerError(OrchestrationError):
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


def build_policy_plugin(cache_dir: str | Path | None = None) -> Path:
    """Compile ``broker_policy.c`` (once per source version) and return the ``.so`` path.

    Needs gcc and the Mosquitto plugin headers (Debian: ``mosquitto-dev``,
    ``libmosquitto-dev``; ``scripts/install-system-deps.sh`` installs them).
    """
    source = _PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    if cache_dir is None:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "homecall"
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"homecall_broker_policy-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BrokerError("no C compiler to build the broker policy plugin: run "
                          "scripts/install-system-deps.sh (installs gcc and mosquitto-dev)")
    partial = cache / f".{target.name}.{os.getpid()}.tmp"
    result = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(partial),
         str(_PLUGIN_SOURCE)],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BrokerError(
            "could not build the broker policy plugin (are mosquitto-dev and libmosquitto-dev "
            f"installed? run scripts/install-system-deps.sh): {result.stderr.strip()[-500:]}"
        )
    partial.replace(target)  # atomic: parallel test runs may build it at the same time
    return target


def policy_config_text(plugin_path: str | Path,
                       publish_rate_per_s: float = GATEWAY_PUBLISH_RATE_PER_S,
                       publish_burst: int = GATEWAY_PUBLISH_BURST) -> str:
    """The ``mosquitto.conf`` lines of HomeCall's broker policy (see docs/security.md). A
    ``publish_rate_per_s`` of 0 lifts the per-login publish rate (benchmarks of central's
    own capacity only)."""
    return (
        # Message sizes: no packet bigger than a signed plan (plus its topic) is read from
        # anyone; gateways' own publishes are held to MAX_GATEWAY_MESSAGE_BYTES by the plugin.
        # Not message_size_limit: Mosquitto 2.0.11 answers it with PUBACK 0x95, which is not
        # a valid PUBACK code, and paho then drops the connection as a protocol error.
        f"max_packet_size {MAX_PACKET_BYTES}\n"
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        f"max_queued_bytes {MAX_QUEUED_BYTES}\n"
        # Client id = username, own-topic-only subscriptions, no retained events, gateway
        # message size: what acl_file cannot express in Mosquitto 2.0.
        f"plugin {plugin_path}\n"
        f"plugin_opt_topic_root {TOPIC_ROOT}\n"
        f"plugin_opt_central_users {' '.join(CENTRAL_USERS)}\n"
        f"plugin_opt_gateway_client_id_prefix {GATEWAY_CLIENT_ID_PREFIX}\n"
        f"plugin_opt_max_gateway_payload {MAX_GATEWAY_MESSAGE_BYTES}\n"
        f"plugin_opt_publish_rate {publish_rate_per_s:g}\n"
        f"plugin_opt_publish_burst {publish_burst}\n"
    )


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


@dataclass(frozen=True)
class TlsListener:
    """The mutual-TLS listener enrolled gateways use: a client certificate signed by
    ``cafile`` is required and its CN is the username (so the ACL's ``%u`` and the policy
    plugin hold a gateway to its own topics) and the client id (so no gateway can take
    another's session); ``crlfile`` lists revoked certificates."""

    port: int
    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path | None = None

    def config_text(self) -> str:
        text = (f"listener {self.port} 127.0.0.1\n"
                f"cafile {self.cafile}\ncertfile {self.certfile}\nkeyfile {self.keyfile}\n"
                f"require_certificate true\nuse_identity_as_username true\n"
                f"use_username_as_clientid true\ntls_version tlsv1.2\n")
        if self.crlfile is not None and self.crlfile.exists():
            text += f"crlfile {self.crlfile}\n"
        return text


class MosquittoBroker:
    """One mosquitto process on 127.0.0.1 with its own config, passwords and ACL: a
    password listener (central, and gateways in the demo and development) and, when
    ``tls`` is given, a mutual-TLS listener for enrolled gateways."""

    def __init__(self, workdir: str | Path, port: int | None = None,
                 persistence: bool = True, tls: TlsListener | None = None,
                 publish_rate_per_s: float = GATEWAY_PUBLISH_RATE_PER_S,
                 publish_burst: int = GATEWAY_PUBLISH_BURST) -> None:
        self.workdir = Path(workdir)
        self.publish_rate_per_s = publish_rate_per_s
        self.publish_burst = publish_burst
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.persistence = persistence
        self.tls = tls
        self.passwords: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.add_user(CENTRAL_USER)

    @property
    def password_file(self) -> Path:
        return self.workdir / "passwords"

    def add_user(self, username: str, password: str | None = None) -> str:
        """Create (or replace) a broker identity; returns its password."""
        if username not in CENTRAL_USERS:
            validate_gateway_id(username)
            if username.startswith(CENTRAL_USER):
                raise BrokerError(
                    f"gateway id {username!r} is reserved: ids starting with "
                    f"{CENTRAL_USER!r} are central's broker identities"
                )
        password = password or secrets.token_urlsafe(18)
        new_gateway = username not in self.passwords and username not in CENTRAL_USERS
        self.passwords[username] = password
        if self.password_file.exists() or len(self.passwords) > 1:
            self._write_passwords()
            if new_gateway and self.process is not None and self.process.poll() is None:
                self._await_login(username)
        return password

    def _await_login(self, username: str, timeout_s: float = 10.0) -> None:
        """Return once the running broker accepts ``username``'s login. Mosquitto reloads
        its password file on SIGHUP in its own time, so a client connecting straight after
        :meth:`add_user` could otherwise be refused. Only for a new gateway: the probe
        connects with that gateway's one client id, which would take over a live session."""
        import paho.mqtt.client as mqtt  # only tests and the demo add users

        deadline = time.monotonic() + timeout_s
        outcome: list[bool] = []
        while True:
            outcome.clear()
            probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                client_id=GATEWAY_CLIENT_ID_PREFIX + username,
                                protocol=mqtt.MQTTv5)
            probe.username_pw_set(username, self.passwords[username])
            probe.on_connect = lambda _c, _u, _f, reason, _p: outcome.append(
                not reason.is_failure)
            with contextlib.suppress(OSError):
                probe.connect("127.0.0.1", self.port)
                while not outcome and time.monotonic() < deadline:
                    if probe.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                        break
                probe.disconnect()
            if outcome and outcome[0]:
                return
            if time.monotonic() >= deadline:
                raise BrokerError(f"the broker did not accept {username!r}'s new login "
                                  f"within {timeout_s}s of reloading its password file")
            time.sleep(0.05)

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
            + (self.tls.config_text() if self.tls is not None else "")
            + f"allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.workdir / 'acl'}\n"
            f"persistence {'true' if self.persistence else 'false'}\n"
            f"persistence_location {self.workdir}/\n"
            f"autosave_interval 1\n"
            + policy_config_text(build_policy_plugin(), self.publish_rate_per_s,
                                 self.publish_burst)
            +
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
