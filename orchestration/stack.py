"""The whole product on one machine, as separate processes: broker, central, a simulated home
and its gateway. Used by ``homecall demo``, the end-to-end tests and the fault benchmarks.

:class:`Stack` starts a private Mosquitto (per-gateway credentials and ACL), a relay that can
cut the gateway's network, ``homecall central serve``, ``homecall sim`` and ``homecall gateway
run``, all on one shared clock spec, and can crash, restart or cut any of them. Every process
logs to ``workdir/logs``.

Central's API needs a login: the stack creates an admin (password in
``workdir/keys/admin.password``) with a bearer token that ``self.http`` sends with every
request, and before each plan upload registers what the plan names (an
organisation, the household for the gateway, its service users and carers with their tags).

Central's database is ``workdir/central.db`` (SQLite) unless ``central_db`` names another
path or a database URL (e.g. ``postgresql+psycopg://...``), which central then migrates on
start like any other.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from homecall.clock import clock_from_spec
from homecall.plan import PlanDocument
from orchestration import OrchestrationError
from orchestration.broker import (
    CENTRAL_USER,
    GATEWAY_PUBLISH_RATE_PER_S,
    MosquittoBroker,
    free_port,
)
from orchestration.netem import TcpRelay


class StackError(OrchestrationError):
    """A part of the stack would not start or answer."""


ADMIN_USER = "demo-admin"
#: Sessions expire on central's clock, which the stack runs scaled (600x: 12 hours would be
#: 72 real seconds): let a browser login on a demo last ten simulated years.
_SCALED_SESSIONS = {"HOMECALL_SESSION_HOURS": str(24 * 3650)}
DEMO_ORGANISATION = "Demo care"


@dataclass
class GatewayProcess:
    gateway_id: str
    journal: Path
    devices: dict[str, Path]
    password_file: Path
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None


def _hash_password(password: str) -> str:
    from central.auth.service import hash_password

    return hash_password(password)


class Stack:
    def __init__(self, workdir: str | Path, clock_spec: str, *, http_port: int | None = None,
                 heartbeat_s: float = 1.0, central_db: str | Path | None = None,
                 publish_rate_per_s: float = GATEWAY_PUBLISH_RATE_PER_S) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: central's database: a path to an SQLite file or a SQLAlchemy URL
        self.central_db = str(central_db or self.workdir / "central.db")
        (self.workdir / "logs").mkdir(exist_ok=True)
        self.clock_spec = clock_spec
        self.http_port = http_port or free_port()
        self.heartbeat_s = heartbeat_s
        # publish_rate_per_s: the broker policy's per-login rate (0 lifts it: benches that
        # measure the gateway's own throughput)
        self.broker = MosquittoBroker(self.workdir / "broker",
                                      publish_rate_per_s=publish_rate_per_s)
        self.relay: TcpRelay | None = None
        self.central: subprocess.Popen[bytes] | None = None
        self.sim: subprocess.Popen[bytes] | None = None
        self.gateways: dict[str, GatewayProcess] = {}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        self.signing_key, self.public_key = self._central_keys()
        self.admin_user = ADMIN_USER
        self.admin_password = self._admin_password()
        # argon2 takes a second or more on a busy machine: hash while central starts
        hasher = ThreadPoolExecutor(1, thread_name_prefix="admin-hash")
        self._admin_hash = hasher.submit(_hash_password, self.admin_password)
        hasher.shutdown(wait=False)
        self.organisation_id: str | None = None

    def _central_keys(self) -> tuple[Path, Path]:
        """Central's Ed25519 key pair (signs plans; gateways verify with the public half)."""
        from homecall.carer_token import generate_signing_key

        keys = self.workdir / "keys"
        keys.mkdir(exist_ok=True)
        private, public = keys / "central.key", keys / "central.pub"
        if not private.exists():
            secret, pub = generate_signing_key()
            private.write_bytes(secret)
            private.chmod(0o600)
            public.write_bytes(pub)
        return private, public

    def _admin_password(self) -> str:
        path = self.workdir / "keys" / "admin.password"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(12) + "\n")
        return path.read_text().strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"

    # -- process helpers -------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str],
               env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
        return subprocess.Popen(
            [sys.executable, "-m", "homecall.cli", *args],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    @staticmethod
    def _end(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- broker ----------------------------------------------------------------------------
    def start_broker(self) -> None:
        self.broker.start()
        self.relay = TcpRelay("127.0.0.1", self.broker.port)

    # -- central ---------------------------------------------------------------------------
    def start_central(self, wait: bool = True) -> None:
        self.central = self._spawn("central", [
            "central", "serve",
            "--db", self.central_db,
            "--port", str(self.http_port),
            "--mqtt-port", str(self.broker.port),
            "--mqtt-user", CENTRAL_USER,
            "--mqtt-password-file", str(self.broker.credentials_file(CENTRAL_USER)),
            "--clock", self.clock_spec,
            "--signing-key", str(self.signing_key),
        ], env_extra=_SCALED_SESSIONS)
        if wait:
            self.wait_central()

    def wait_central(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.central is not None and self.central.poll() is not None:
                raise StackError(f"central exited ({self.central.returncode}); see "
                                 f"{self.workdir / 'logs' / 'central.log'}")
            with contextlib.suppress(httpx.HTTPError):
                health = self.http.get("/api/health").json()
                if health.get("broker_connected"):
                    self._login()
                    return
            time.sleep(0.05)
        raise StackError("central did not become ready")

    def _login(self) -> None:
        """Make the stack's admin (once per workdir) and give ``self.http`` a bearer token.

        Done in-process on central's database once central has migrated it, with the token
        issued directly (no HTTP login): the clock is already running, and a second process
        or another argon2 check would eat into the scenario's start-up lead on a busy
        machine. The demo's printed password logs in through ``/api/auth/login`` as usual.
        """
        if "authorization" in self.http.headers:
            return  # tokens live in central's database and survive a restart
        from central.auth.service import Accounts
        from central.db.engine import Database

        db = Database(self.central_db)
        try:
            accounts = Accounts(db, clock_from_spec(self.clock_spec),
                                token_ttl=timedelta(days=3650))
            user = next((u for u in accounts.list_users() if u.username == self.admin_user),
                        None)
            if user is None:
                user = accounts.create_user(self.admin_user, self.admin_password, "admin", None,
                                            password_hash=self._admin_hash.result())
            token = accounts.issue(user, "bearer").token
        finally:
            db.dispose()
        self.http.headers["authorization"] = f"Bearer {token}"

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise StackError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def register_people(self, document: PlanDocument) -> None:
        """Make sure central knows the organisation, household, service users and carers
        ``document`` names (demo records: placeholder names, no real personal data)."""
        if self.organisation_id is None:
            orgs = self._api("GET", "/api/organisations")
            found = [o for o in orgs if o["name"] == DEMO_ORGANISATION]
            self.organisation_id = (found[0]["id"] if found else self._api(
                "POST", "/api/organisations", json={"name": DEMO_ORGANISATION})["id"])
        households = {h["gateway_id"]: h for h in self._api("GET", "/api/households")}
        household = households.get(document.gateway) or self._api(
            "POST", "/api/households", json={
                "organisation_id": self.organisation_id, "gateway_id": document.gateway,
                "address": f"Demo household of {document.gateway}",
                "key_safe_notes": "demo: key safe by the front door"})
        residents = {s["id"] for s in self._api("GET", "/api/service-users",
                                                params={"household": household["id"]})}
        for su in document.service_users:
            if su not in residents:
                self._api("POST", "/api/service-users", json={
                    "id": su, "household_id": household["id"], "name": f"Demo person {su}",
                    "date_of_birth": "1940-01-01"})
        carers = {c["id"]: c for c in self._api("GET", "/api/carers")}
        for carer in document.carers:
            known = carers.get(carer.id)
            if known is None:
                self._api("POST", "/api/carers", json={
                    "id": carer.id, "organisation_id": household["organisation_id"],
                    "name": f"Demo carer {carer.id}", "phone": "+44 7700 900000",
                    "tags": list(carer.tags)})
            elif not set(carer.tags) <= set(known["tags"]):
                self._api("PATCH", f"/api/carers/{carer.id}",
                          json={"tags": sorted({*known["tags"], *carer.tags})})

    def kill_central(self) -> None:
        self._end(self.central, kill=True)

    def upload_plan(self, document: PlanDocument) -> dict[str, Any]:
        self.register_people(document)
        response = self.http.post("/api/plans", json=document.model_dump(mode="json"))
        if response.status_code != 201:
            raise StackError(f"plan upload failed: {response.status_code} {response.text}")
        return response.json()

    # -- simulated home --------------------------------------------------------------------
    def start_sim(self, scenario_path: Path | None, devices: set[str],
                  timeout_s: float = 15.0) -> dict[str, Path]:
        dev_dir = self.workdir / "dev"
        dev_dir.mkdir(exist_ok=True)
        ready = dev_dir / "ready"
        ready.unlink(missing_ok=True)
        args = ["sim", "--dev-dir", str(dev_dir), "--clock", self.clock_spec, "--stay",
                "--devices", ",".join(sorted(devices))]
        if scenario_path is not None:
            args += ["--scenario", str(scenario_path)]
        self.sim = self._spawn("sim", args)
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.sim.poll() is not None:
                raise StackError(f"simulator exited ({self.sim.returncode}); see "
                                 f"{self.workdir / 'logs' / 'sim.log'}")
            if time.monotonic() > deadline:
                raise StackError("simulator did not create its devices")
            time.sleep(0.02)
        return {name: Path(p) for name, p in json.loads(ready.read_text()).items()}

    # -- gateway ---------------------------------------------------------------------------
    def add_gateway(self, gateway_id: str, devices: dict[str, Path],
                    extra_args: list[str] | None = None) -> GatewayProcess:
        self.broker.add_user(gateway_id)
        gateway = GatewayProcess(
            gateway_id=gateway_id,
            journal=self.workdir / "gateway" / gateway_id / "journal.db",
            devices=devices,
            password_file=self.broker.credentials_file(gateway_id),
            extra_args=extra_args or [],
        )
        self.gateways[gateway_id] = gateway
        return gateway

    def start_gateway(self, gateway_id: str) -> None:
        gateway = self.gateways[gateway_id]
        assert self.relay is not None, "start_broker() first"
        args = [
            "gateway", "run", "--id", gateway_id,
            "--journal", str(gateway.journal),
            "--mqtt-port", str(self.relay.port),
            "--mqtt-password-file", str(gateway.password_file),
            "--clock", self.clock_spec,
            "--heartbeat", str(self.heartbeat_s),
            "--device-state-file", str(gateway.journal.parent / "devices.json"),
            "--plan-public-key", str(self.public_key),
            *gateway.extra_args,
        ]
        for device, path in gateway.devices.items():
            args += [f"--{device}", str(path)]
        gateway.process = self._spawn(f"gateway-{gateway_id}", args)

    def crash_gateway(self, gateway_id: str) -> None:
        self._end(self.gateways[gateway_id].process, kill=True)

    def stop_gateway(self, gateway_id: str) -> None:
        self._end(self.gateways[gateway_id].process)

    # -- observation -----------------------------------------------------------------------
    def gateway_view(self, gateway_id: str) -> dict[str, Any] | None:
        with contextlib.suppress(httpx.HTTPError):
            for gw in self.http.get("/api/gateways").json():
                if gw["id"] == gateway_id:
                    return gw
        return None

    def wait_delivered(self, gateway_id: str, timeout_s: float = 60.0) -> bool:
        """Wait until central holds every event the gateway reports journalled (backlog 0)."""
        deadline = time.monotonic() + timeout_s
        stable = 0
        while time.monotonic() < deadline:
            view = self.gateway_view(gateway_id)
            status = (view or {}).get("status") or {}
            if (
                view is not None
                and status.get("state") == "online"
                and status.get("backlog") == 0
                and status.get("last_seq") is not None
                and view["contiguous_seq"] >= status["last_seq"]
            ):
                stable += 1
                if stable >= 3:
                    return True
            else:
                stable = 0
            time.sleep(max(self.heartbeat_s / 2, 0.1))
        return False

    def report(self, gateway_id: str | None = None) -> dict[str, Any]:
        params = {"gateway": gateway_id} if gateway_id else {}
        return self.http.get("/api/report", params=params).json()

    # -- teardown --------------------------------------------------------------------------
    def stop(self) -> None:
        for gateway in self.gateways.values():
            self._end(gateway.process)
        self._end(self.sim)
        self._end(self.central)
        if self.relay is not None:
            self.relay.close()
        self.broker.stop()
        self.http.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
