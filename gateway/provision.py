"""``homecall gateway provision --central URL --code CODE``: enrol this device.

Makes the gateway's private key here (ECDSA P-256; it never leaves the device), sends a
certificate signing request with the installer's one-time code to central, and writes what
central sends back into the config directory (default ``/etc/homecall``): ``gateway.key``
(0600), ``gateway.pem`` (CN = the household's gateway id), ``ca.pem``, the plan-signing
public key, and ``gateway.toml`` (id, journal, broker host and mutual-TLS port, the TLS file
paths), which ``homecall gateway run`` then reads. A refused code, an unreachable central or
an existing key is one line saying so.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gateway import GatewayError


class ProvisionError(GatewayError):
    """Enrolment failed (the message says why)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--central", required=True, help="central's URL, e.g. https://central")
    parser.add_argument("--code", required=True, help="the installer's enrolment code")
    parser.add_argument("--config-dir", type=Path, default=Path("/etc/homecall"))
    parser.add_argument("--journal", type=Path,
                        default=Path("/var/lib/homecall/journal.db"))
    parser.add_argument("--ca-file", type=Path,
                        help="CA bundle to check central's HTTPS certificate with")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing key and certificate (re-enrolment)")


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    path.chmod(0o600)


def provision(central: str, code: str, config_dir: Path, journal: Path, *,
              verify: str | bool = True, force: bool = False) -> str:
    """Enrol; returns the gateway id."""
    import httpx
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key_path = config_dir / "gateway.key"
    if key_path.exists() and not force:
        raise ProvisionError(f"{key_path} exists: this device is enrolled (use --force to "
                             "enrol it again)")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enrolling")]))
           .sign(key, hashes.SHA256()))
    try:
        reply = httpx.post(central.rstrip("/") + "/api/enrol", timeout=30, verify=verify,
                           json={"code": code,
                                 "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
    except httpx.HTTPError as err:
        raise ProvisionError(f"cannot reach central at {central}: {err}") from err
    if reply.status_code != 200:
        try:
            detail = reply.json().get("detail", reply.text)
        except ValueError:
            detail = reply.text[:200]
        raise ProvisionError(f"central refused the enrolment ({reply.status_code}): {detail}")
    body = reply.json()
    config_dir.mkdir(parents=True, exist_ok=True)
    _private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    (config_dir / "gateway.pem").write_text(body["certificate"])
    (config_dir / "ca.pem").write_text(body["ca_certificate"])
    lines = [
        "# Written by homecall gateway provision: this gateway's identity and its broker.",
        f'id = "{body["gateway_id"]}"',
        f'journal = "{journal}"',
        f'mqtt_host = "{body["broker_host"]}"',
        f'mqtt_port = {int(body["broker_tls_port"])}',
        f'mqtt_tls_ca = "{config_dir / "ca.pem"}"',
        f'mqtt_tls_cert = "{config_dir / "gateway.pem"}"',
        f'mqtt_tls_key = "{key_path}"',
    ]
    if body.get("plan_public_key"):
        (config_dir / "plan-public.key").write_text(body["plan_public_key"] + "\n")
        lines.append(f'plan_public_key = "{config_dir / "plan-public.key"}"')
    _private(config_dir / "gateway.toml", ("\n".join(lines) + "\n").encode())
    return str(body["gateway_id"])


def run(args: argparse.Namespace) -> int:
    verify: str | bool = str(args.ca_file) if args.ca_file else True
    try:
        gateway_id = provision(args.central, args.code, args.config_dir, args.journal,
                               verify=verify, force=args.force)
    except (ProvisionError, OSError) as err:
        print(f"homecall gateway provision: {err}")
        return 1
    print(f"Enrolled as {gateway_id}; settings in {args.config_dir / 'gateway.toml'}. "
          f"Next: homecall gateway walk-test, then start the service.")
    return 0
