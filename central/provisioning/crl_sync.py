"""``homecall central sync-crl``: keep a broker's CRL in step with central's, for a broker on
another host than central's CA. Fetches ``GET /api/ca/crl.pem``, checks it is a CRL signed by
the CA the broker trusts, and only when it changed writes it (atomically, 0644) and runs the
command that makes the broker reread it (Mosquitto reads ``crlfile`` when it starts, so
``systemctl restart mosquitto``). Run it from a systemd timer every minute or so
(docs/provisioning.md); exit status 0 unchanged or updated, 1 on any error (said in one
line), and the old CRL stays in place."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
from pathlib import Path

from central.provisioning import ProvisioningError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--central", required=True, help="central's URL")
    parser.add_argument("--ca-file", type=Path, required=True,
                        help="the CA certificate the broker trusts (checks the CRL's signature)")
    parser.add_argument("--crl-file", type=Path, required=True,
                        help="the broker's crlfile")
    parser.add_argument("--on-change", default="systemctl restart mosquitto",
                        help="run when the CRL changed (default: %(default)s)")


def sync_crl(central: str, ca_file: Path, crl_file: Path, on_change: str) -> bool:
    """True when the CRL changed (and ``on_change`` ran)."""
    import httpx
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    try:
        reply = httpx.get(central.rstrip("/") + "/api/ca/crl.pem", timeout=30)
        reply.raise_for_status()
    except httpx.HTTPError as err:
        raise ProvisioningError(f"could not fetch the CRL from {central}: {err}") from err
    fetched = reply.content
    try:
        crl = x509.load_pem_x509_crl(fetched)
        authority = x509.load_pem_x509_certificate(ca_file.read_bytes())
        if not crl.is_signature_valid(authority.public_key()):  # type: ignore[arg-type]
            raise InvalidSignature
    except (ValueError, InvalidSignature, OSError) as err:
        raise ProvisioningError(f"what {central} sent is not a CRL signed by {ca_file}: "
                                f"{err or 'bad signature'}") from err
    if crl_file.exists() and crl_file.read_bytes() == fetched:
        return False
    partial = crl_file.with_name(f".{crl_file.name}.{os.getpid()}")
    partial.write_bytes(fetched)
    partial.chmod(0o644)
    partial.replace(crl_file)
    done = subprocess.run(shlex.split(on_change), capture_output=True, text=True)
    if done.returncode != 0:
        raise ProvisioningError(f"CRL updated, but {on_change!r} failed: "
                                f"{(done.stderr or done.stdout).strip()[-300:]}")
    return True


def run(args: argparse.Namespace) -> int:
    try:
        changed = sync_crl(args.central, args.ca_file, args.crl_file, args.on_change)
    except ProvisioningError as err:
        print(f"sync-crl: {err}")
        return 1
    print("sync-crl: CRL updated, broker told" if changed else "sync-crl: CRL unchanged")
    return 0
