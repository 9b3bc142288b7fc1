"""One-time enrolment codes: short and typeable (8 Crockford base-32 characters shown as
``XXXX-XXXX``: no I, L, O or U; case, spaces and dashes ignored when typed), single use,
valid 24 h, stored only as a SHA-256 hash, audited. Guessing is throttled per client
address: ``MAX_FAILURES`` wrong codes within ``WINDOW`` and that address gets 429 until the
window has passed. 40 bits of code against a handful of guesses per window per address."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from central.db.engine import Database
from central.db.tables import audit, enrolment_codes
from central.provisioning import ProvisioningError
from homecall.clock import format_utc, parse_utc

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base 32
CODE_LENGTH = 8
VALID_FOR = timedelta(hours=24)
MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


class Throttled(ProvisioningError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many wrong enrolment codes from this address: try again in "
                         f"{retry_after_s} s")
        self.retry_after_s = retry_after_s


def normalise(code: str) -> str:
    text = code.upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("ILO", "110"))


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise(code).encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    household_id: str
    gateway_id: str


class EnrolmentCodes:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._failures: dict[str, list[datetime]] = {}
        self._lock = threading.Lock()

    def issue(self, household_id: str, gateway_id: str, who: str, now: datetime) -> Issued:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        expires = now + VALID_FOR
        with self.db.write() as conn:
            conn.execute(sa.insert(enrolment_codes).values(
                code_hash=code_hash(raw), household_id=household_id, gateway_id=gateway_id,
                created_by=who, created_at=format_utc(now), expires_at=format_utc(expires)))
            conn.execute(sa.insert(audit).values(
                at=format_utc(now), who=who, action="enrolment_code.issued",
                target=f"household:{household_id}",
                detail=json.dumps({"gateway_id": gateway_id,
                                   "expires_at": format_utc(expires)})))
        return Issued(f"{raw[:4]}-{raw[4:]}", expires)

    def _check_throttle(self, client: str, now: datetime) -> None:
        with self._lock:
            recent = [t for t in self._failures.get(client, []) if now - t < WINDOW]
            self._failures[client] = recent
            if len(recent) >= MAX_FAILURES:
                raise Throttled(int((recent[0] + WINDOW - now).total_seconds()) + 1)

    def _failed(self, client: str, now: datetime) -> None:
        with self._lock:
            self._failures.setdefault(client, []).append(now)

    def redeem(self, code: str, client: str, now: datetime) -> Redeemed:
        """Use a code once: the household and gateway it enrols. Wrong, used and expired
        codes all count towards the client's throttle."""
        self._check_throttle(client, now)
        with self.db.write() as conn:
            row = conn.execute(sa.select(enrolment_codes).where(
                enrolment_codes.c.code_hash == code_hash(code))).first()
            reason = None
            if row is None:
                reason = "unknown enrolment code"
            elif row.used_at is not None:
                reason = "this enrolment code has already been used"
            elif parse_utc(row.expires_at) <= now:
                reason = "this enrolment code has expired: ask for a new one"
            if reason is not None or row is None:
                self._failed(client, now)
                conn.execute(sa.insert(audit).values(
                    at=format_utc(now), who=f"address:{client}",
                    action="enrolment_code.refused", target="enrolment",
                    detail=json.dumps({"reason": reason})))
                raise ProvisioningError(reason or "unknown enrolment code")
            conn.execute(sa.update(enrolment_codes).where(
                enrolment_codes.c.code_hash == row.code_hash).values(used_at=format_utc(now)))
            conn.execute(sa.insert(audit).values(
                at=format_utc(now), who=f"gateway:{row.gateway_id}",
                action="enrolment_code.used", target=f"household:{row.household_id}",
                detail=json.dumps({"address": client})))
        return Redeemed(row.household_id, row.gateway_id)
