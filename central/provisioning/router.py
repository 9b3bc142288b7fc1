"""The enrolment API. An installer (or a manager) asks for a code for a household:
``POST /api/households/{id}/enrolment-codes``. The new gateway, with no login, sends the
code and a CSR to ``POST /api/enrol`` and gets back its certificate (CN = the household's
gateway id), the CA certificate, the broker's address and TLS port, and the plan-signing
public key. ``POST /api/gateways/{id}/revoke`` (a stolen Pi) revokes its certificates and
rewrites the CRL the broker checks (the broker rereads it when restarted; docs/provisioning.md);
``GET /api/ca/crl.pem`` serves it to a broker on another host.
Without a CA (``ca_dir`` unset) these answer 503 and say how to create one."""

from __future__ import annotations

import logging
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import HomeEditor, PeopleDep
from central.deps import ClockDep, DbDep, StoreDep
from central.people.repository import NotFound as PersonNotFound
from central.provisioning import ProvisioningError
from central.provisioning.ca import CertificateAuthority
from central.provisioning.codes import EnrolmentCodes, Throttled

log = logging.getLogger(__name__)
router = APIRouter(tags=["enrolment"])


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=20, description="the installer's code")
    csr: str = Field(min_length=100, max_length=8000, description="PEM CSR made on the device")


class Enrolment(BaseModel):
    gateway_id: str
    certificate: str
    ca_certificate: str
    broker_host: str
    broker_tls_port: int
    plan_public_key: str | None


def _ca(request: Request) -> CertificateAuthority:
    directory = request.app.state.settings.ca_dir
    if directory is None or not CertificateAuthority(directory).exists():
        raise HTTPException(status_code=503, detail="central has no CA for gateway enrolment: "
                            "run homecall central init-ca and set HOMECALL_CA_DIR")
    return CertificateAuthority(directory)


def _codes(request: Request, db: DbDep) -> EnrolmentCodes:
    codes: EnrolmentCodes | None = getattr(request.app.state, "enrolment_codes", None)
    if codes is None:
        codes = request.app.state.enrolment_codes = EnrolmentCodes(db)
    return codes


@router.post("/api/households/{household_id}/enrolment-codes", status_code=201)
def issue_code(household_id: str, request: Request, db: DbDep, clock: ClockDep,
               people: PeopleDep, user: HomeEditor) -> dict[str, Any]:
    """A one-time code to enrol this household's gateway (valid 24 h)."""
    _ca(request)
    try:
        household = people.get_household(household_id, user.scope)
    except PersonNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    issued = _codes(request, db).issue(household.id, household.gateway_id, user.username,
                                       clock.now())
    return {"code": issued.code, "gateway_id": household.gateway_id,
            "expires_at": issued.expires_at}


@router.post("/api/enrol", response_model=Enrolment)
def enrol(body: EnrolRequest, request: Request, db: DbDep, store: StoreDep,
          clock: ClockDep) -> Enrolment:
    """A gateway enrols with its code and CSR (no login: the code is the credential)."""
    authority = _ca(request)
    client = request.client.host if request.client else "unknown"
    now = clock.now()
    try:
        redeemed = _codes(request, db).redeem(body.code, client, now)
    except Throttled as err:
        raise HTTPException(status_code=429, detail=str(err),
                            headers={"Retry-After": str(err.retry_after_s)}) from err
    except ProvisioningError as err:
        raise HTTPException(status_code=403, detail=str(err)) from err
    try:
        cert = authority.sign_gateway(body.csr, redeemed.gateway_id, now)
    except ProvisioningError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    store.record_certificate(str(cert.serial_number), redeemed.gateway_id, now,
                             cert.not_valid_after_utc)
    log.info("gateway %s enrolled (certificate %x)", redeemed.gateway_id, cert.serial_number)
    settings = request.app.state.settings
    public_key = None
    if settings.signing_key_path is not None:
        from homecall.plan import read_key_file
        from homecall.signing import public_key_for

        public_key = public_key_for(read_key_file(settings.signing_key_path)).hex()
    return Enrolment(
        gateway_id=redeemed.gateway_id,
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
        ca_certificate=authority.cert_path.read_text(),
        broker_host=settings.gateway_broker_host,
        broker_tls_port=settings.gateway_broker_tls_port, plan_public_key=public_key)


@router.get("/api/ca/crl.pem")
def certificate_revocation_list(request: Request) -> Response:
    """The CRL the broker checks (public, like every CRL: serial numbers signed by the CA).
    A broker on another host fetches it with ``homecall central sync-crl``."""
    authority = _ca(request)
    return Response(authority.crl_path.read_bytes(), media_type="application/x-pem-file")


@router.post("/api/gateways/{gateway_id}/revoke")
def revoke(gateway_id: str, request: Request, store: StoreDep, clock: ClockDep,
           people: PeopleDep, user: HomeEditor) -> dict[str, Any]:
    """Revoke the gateway's certificates (a lost or stolen device); audited."""
    authority = _ca(request)
    if people.household_for_gateway(gateway_id, user.scope) is None:
        raise HTTPException(status_code=404, detail=f"no gateway {gateway_id!r}")
    now = clock.now()
    count = authority.revoke_gateway(gateway_id, now)
    store.revoke_certificates(gateway_id, now, user.username)
    log.warning("gateway %s: %d certificate(s) revoked by %s", gateway_id, count,
                user.username)
    return {"gateway": gateway_id, "revoked": count, "crl": str(authority.crl_path)}
