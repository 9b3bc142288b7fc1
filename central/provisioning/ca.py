"""Central's certificate authority, as files in one directory (keys 0600):
``ca.key``/``ca.pem`` (the CA), ``broker.key``/``broker.pem`` (the broker's TLS server
identity), ``crl.pem`` (revoked gateway certificates, which the broker checks), and
``serials.json`` (every certificate issued: serial, gateway, expiry, revoked).

``homecall central init-ca --dir DIR [--broker-host HOST]`` creates them. Keys are ECDSA
P-256; gateway certificates are valid for ``GATEWAY_CERT_DAYS`` and carry the gateway id as
their only name (CN), for client authentication only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central.provisioning import ProvisioningError
from homecall.wire import WireError, validate_gateway_id

GATEWAY_CERT_DAYS = 825
CA_DAYS = 3650


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class CertificateAuthority:
    directory: Path

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def broker_cert_path(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def broker_key_path(self) -> Path:
        return self.directory / "broker.key"

    def exists(self) -> bool:
        return (self.directory / "ca.key").exists() and self.cert_path.exists()

    # -- creating ---------------------------------------------------------------------------
    def init(self, broker_host: str = "127.0.0.1", now: datetime | None = None) -> None:
        """Create the CA, the broker's server certificate and an empty CRL (refuses to
        overwrite an existing CA: every enrolled gateway trusts it)."""
        if self.exists():
            raise ProvisioningError(f"a CA already exists in {self.directory}")
        now = now or datetime.now(UTC)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HomeCall gateway CA")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        _write_private(self.directory / "ca.key", _key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._write_serials({})
        self._issue_broker(broker_host, now)
        self.write_crl(now)

    def _load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if not self.exists():
            raise ProvisioningError(f"no CA in {self.directory}: run homecall central init-ca")
        key = serialization.load_pem_private_key((self.directory / "ca.key").read_bytes(),
                                                 None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ProvisioningError("the CA key is not an EC key")
        return key, x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def _issue_broker(self, host: str, now: datetime) -> None:
        ca_key, ca_cert = self._load()
        key = new_key()
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=GATEWAY_CERT_DAYS))
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_private(self.broker_key_path, _key_pem(key))
        self.broker_cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    # -- gateways ----------------------------------------------------------------------------
    def sign_gateway(self, csr_pem: str, gateway_id: str, now: datetime) -> x509.Certificate:
        """A client certificate for ``gateway_id`` from the device's CSR (its key stays on
        the device). The CSR's own subject is ignored: the name is the gateway id."""
        try:
            validate_gateway_id(gateway_id)
        except WireError as err:
            raise ProvisioningError(f"gateway id: {err}") from err
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as err:
            raise ProvisioningError("csr: not a PEM certificate signing request") from err
        if not csr.is_signature_valid:
            raise ProvisioningError("csr: its signature does not match its key")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or \
                public_key.curve.key_size < 256:
            raise ProvisioningError("csr: the key must be ECDSA P-256 or stronger")
        ca_key, ca_cert = self._load()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gateway_id)]))
                .issuer_name(ca_cert.subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=GATEWAY_CERT_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        serials = self._serials()
        serials[str(cert.serial_number)] = {
            "gateway_id": gateway_id, "issued_at": now.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(), "revoked_at": None}
        self._write_serials(serials)
        return cert

    def revoke_gateway(self, gateway_id: str, now: datetime) -> int:
        """Revoke every certificate issued to ``gateway_id``; rewrite the CRL. Returns how
        many were revoked now."""
        serials = self._serials()
        count = 0
        for entry in serials.values():
            if entry["gateway_id"] == gateway_id and entry["revoked_at"] is None:
                entry["revoked_at"] = now.isoformat()
                count += 1
        self._write_serials(serials)
        self.write_crl(now)
        return count

    def write_crl(self, now: datetime) -> None:
        ca_key, ca_cert = self._load()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
                   .last_update(now - timedelta(minutes=5))
                   .next_update(now + timedelta(days=30)))
        for serial, entry in self._serials().items():
            if entry["revoked_at"]:
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(int(serial))
                    .revocation_date(datetime.fromisoformat(entry["revoked_at"])).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        self.crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    def _serials(self) -> dict[str, dict[str, str | None]]:
        path = self.directory / "serials.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_serials(self, serials: dict[str, dict[str, str | None]]) -> None:
        _write_private(self.directory / "serials.json",
                       json.dumps(serials, indent=1).encode())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("var/ca"),
                        help="where the CA's files go (default var/ca)")
    parser.add_argument("--broker-host", default="127.0.0.1",
                        help="the broker's host name or address, for its TLS certificate")


def run(args: argparse.Namespace) -> int:
    try:
        CertificateAuthority(args.dir).init(args.broker_host)
    except (ProvisioningError, OSError) as err:
        print(f"homecall central init-ca: {err}")
        return 1
    print(f"CA created in {args.dir} (ca.pem for gateways and the broker; keys are 0600)")
    return 0
