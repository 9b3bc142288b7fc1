"""Enrolment and mutual TLS, on real parts: central's CA, the enrolment API served over
HTTP, ``homecall gateway provision``'s code run as a device would, and Mosquitto with a
mutual-TLS listener (client certificate required, its CN the username and the client id).

An installer gets a code per household; each gateway enrols with its own key. Gateway A
cannot publish to or subscribe to B's topics (MQTT 5 reason 0x87, and B's subscriber gets
nothing); a revoked gateway cannot connect once the broker has reloaded its CRL; a reused,
expired or guessed code is refused and guessing is throttled (429)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from argon2 import PasswordHasher

from central.app import create_app
from central.people.models import HouseholdIn, OrganisationIn
from central.people.repository import People
from central.provisioning.ca import CertificateAuthority
from central.settings import CentralSettings
from gateway.provision import ProvisionError, provision
from homecall.clock import ManualClock
from homecall.wire import Channel, topic
from orchestration.broker import MosquittoBroker, TlsListener, free_port
from tests.conftest import wait_for
from tests.support.auth import bearer, create_user
from tests.support.serve import serving

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOT_AUTHORIZED = 0x87


@dataclass
class Site:
    url: str
    ca: CertificateAuthority
    broker: MosquittoBroker
    clock: ManualClock
    installer: dict[str, str]
    households: dict[str, str]  # gateway id -> household id
    root: Path

    def code(self, gateway_id: str) -> str:
        reply = httpx.post(f"{self.url}/api/households/{self.households[gateway_id]}"
                           "/enrolment-codes", headers=self.installer)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["code"])

    def enrol(self, gateway_id: str) -> Path:
        config_dir = self.root / "devices" / gateway_id
        assert provision(self.url, self.code(gateway_id), config_dir,
                         self.root / "journal.db") == gateway_id
        return config_dir


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr("central.auth.service._hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    ca = CertificateAuthority(tmp_path / "ca")
    ca.init("127.0.0.1")
    # The broker keeps its own copy of the CRL, as on a host of its own (sync-crl updates it).
    broker_crl = tmp_path / "broker-host" / "crl.pem"
    broker_crl.parent.mkdir()
    shutil.copy(ca.crl_path, broker_crl)
    tls = TlsListener(port=free_port(), cafile=ca.cert_path, certfile=ca.broker_cert_path,
                      keyfile=ca.broker_key_path, crlfile=broker_crl)
    clock = ManualClock(T0)
    settings = CentralSettings(database=f"sqlite:///{tmp_path / 'central.db'}",
                               ca_dir=ca.directory, gateway_broker_tls_port=tls.port,
                               supervise=False)
    app = create_app(settings, clock=clock, with_ingest=False)
    with MosquittoBroker(tmp_path / "broker", tls=tls) as broker, serving(app) as url:
        people = People(app.state.db, clock)
        org = people.create_organisation(OrganisationIn(name="Care Org"), "test")
        households = {gw: people.create_household(
            HouseholdIn(gateway_id=gw, address=f"{gw} Road"), org.id, "test").id
            for gw in ("gw-home-a", "gw-home-b")}
        create_user(app, "ian", "installer", org.id)
        with httpx.Client(base_url=url) as client:
            installer = bearer(client, "ian")  # type: ignore[arg-type]
        yield Site(url, ca, broker, clock, installer, households, tmp_path)


class TlsClient:
    """An MQTT 5 connection with a gateway's certificate (no username: the CN is it)."""

    def __init__(self, site: Site, config_dir: Path, client_id: str = "whatever") -> None:
        self.connacks: list[int] = []
        self.subacks: dict[int, list[int]] = {}
        self.pubacks: dict[int, int] = {}
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(config_dir / "ca.pem"),
                       certfile=str(config_dir / "gateway.pem"),
                       keyfile=str(config_dir / "gateway.key"),
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._connected
        client.on_subscribe = self._subscribed
        client.on_publish = self._published
        client.on_message = self._message
        self.client = client
        self.port = site.broker.tls.port if site.broker.tls else 0

    def _connected(self, *args: Any) -> None:
        with self.lock:
            self.connacks.append(int(args[3].value))

    def _subscribed(self, client: Any, userdata: Any, mid: int, reasons: Any, p: Any) -> None:
        with self.lock:
            self.subacks[mid] = [int(r.value) for r in reasons]

    def _published(self, client: Any, userdata: Any, mid: int, reason: Any, p: Any) -> None:
        with self.lock:
            self.pubacks[mid] = int(reason.value)

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.messages.append(bytes(message.payload))

    def connect(self) -> int | None:
        """The CONNACK code, or None when the TLS handshake itself was refused."""
        try:
            self.client.connect("127.0.0.1", self.port, keepalive=30)
        except (ssl.SSLError, OSError):
            return None
        self.client.loop_start()
        try:
            wait_for(lambda: self.connacks, timeout=5, message="CONNACK")
        except AssertionError:
            self.close()
            return None
        return self.connacks[-1]

    def subscribe(self, topic_filter: str) -> int:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        return wait_for(lambda: self.subacks.get(mid), message="SUBACK")[0]

    def publish(self, topic_name: str, payload: bytes) -> int:
        info = self.client.publish(topic_name, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, message="PUBACK")
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_each_gateway_speaks_only_for_itself_over_mutual_tls(site: Site) -> None:
    a_dir, b_dir = site.enrol("gw-home-a"), site.enrol("gw-home-b")
    assert (a_dir / "gateway.key").stat().st_mode & 0o777 == 0o600
    settings = (a_dir / "gateway.toml").read_text()
    assert 'id = "gw-home-a"' in settings and f"mqtt_port = {site.broker.tls.port}" in settings  # type: ignore[union-attr]
    a = TlsClient(site, a_dir, client_id="gw-gw-home-b")  # even claiming B's client id
    b = TlsClient(site, b_dir)
    try:
        assert a.connect() == 0 and b.connect() == 0
        assert b.subscribe(topic("gw-home-b", Channel.CMD)) == 1
        assert a.subscribe(topic("gw-home-b", Channel.CMD)) == NOT_AUTHORIZED
        assert a.subscribe(topic("gw-home-b", Channel.ACK)) == NOT_AUTHORIZED
        assert a.publish(topic("gw-home-b", Channel.EVENTS), b"{}") == NOT_AUTHORIZED
        assert a.publish(topic("gw-home-b", Channel.STATUS), b"{}") == NOT_AUTHORIZED
        assert b.publish(topic("gw-home-b", Channel.STATUS),
                         b'{"v":1,"gateway_id":"gw-home-b","state":"online"}') < 0x80
        assert b.client.is_connected()  # A's claim to B's client id took nothing from B
        assert b.messages == []
    finally:
        a.close()
        b.close()


def _sync_crl(site: Site, on_change: str) -> subprocess.CompletedProcess[str]:
    broker_crl = site.broker.tls.crlfile if site.broker.tls else None
    assert broker_crl is not None
    return subprocess.run(
        [sys.executable, "-m", "homecall.cli", "central", "sync-crl", "--central", site.url,
         "--ca-file", str(site.ca.cert_path), "--crl-file", str(broker_crl),
         "--on-change", on_change], capture_output=True, text=True, timeout=60)


def test_a_revoked_gateway_cannot_connect(site: Site) -> None:
    """Revoked at central; the broker's host fetches the CRL (``sync-crl``), which restarts
    the broker only when it changed; from then on the stolen device's handshake fails."""
    a_dir = site.enrol("gw-home-a")
    first = TlsClient(site, a_dir)
    assert first.connect() == 0
    first.close()
    marker = site.root / "restarted"
    unchanged = _sync_crl(site, f"touch {marker}")
    assert unchanged.returncode == 0 and "unchanged" in unchanged.stdout
    assert not marker.exists()
    reply = httpx.post(f"{site.url}/api/gateways/gw-home-a/revoke", headers=site.installer)
    assert reply.status_code == 200 and reply.json()["revoked"] == 1
    assert TlsClient(site, a_dir).connect() == 0  # the broker has not heard yet
    updated = _sync_crl(site, f"touch {marker}")
    assert updated.returncode == 0 and "updated" in updated.stdout, updated.stdout
    assert marker.exists()
    site.broker.restart()  # what the --on-change command does on a real broker host
    assert TlsClient(site, a_dir).connect() is None
    # a CRL that is not signed by the broker's CA is refused and the old one stays
    stranger = CertificateAuthority(site.root / "other-ca")
    stranger.init("127.0.0.1")
    refused = subprocess.run(
        [sys.executable, "-m", "homecall.cli", "central", "sync-crl", "--central", site.url,
         "--ca-file", str(stranger.cert_path), "--crl-file", str(site.root / "x.pem")],
        capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "not a CRL signed by" in refused.stdout
    assert not (site.root / "x.pem").exists()


def test_reused_expired_and_guessed_codes_are_refused_and_guessing_is_throttled(
    site: Site,
) -> None:
    code = site.code("gw-home-a")
    site.enrol("gw-home-b")
    devices = site.root / "devices"
    provision(site.url, code, devices / "first", site.root / "j.db")
    with pytest.raises(ProvisionError, match="already been used"):
        provision(site.url, code, devices / "again", site.root / "j.db")
    stale = site.code("gw-home-a")
    site.clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    with pytest.raises(ProvisionError, match="expired"):
        provision(site.url, stale, devices / "stale", site.root / "j.db")
    for guess in ("AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD"):
        with pytest.raises(ProvisionError, match="unknown enrolment code"):
            provision(site.url, guess, devices / guess, site.root / "j.db")
    with pytest.raises(ProvisionError, match="429"):  # 5 wrong codes from here in 15 min
        provision(site.url, site.code("gw-home-b"), devices / "late", site.root / "j.db")
    assert not (devices / "again" / "gateway.key").exists()
