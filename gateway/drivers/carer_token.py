"""Offline verification of a signed carer token read from an NDEF message.

The gateway holds central's Ed25519 public key (delivered with provisioning) and checks a
token found on a tapped phone or card without any network: signature, then expiry against
the injected clock's time. Format and signing live in :mod:`homecall.carer_token`. Anything
that is not a valid, unexpired token signed by that key yields ``None`` plus a reason, and
the tap is then handled as the bare tag UID (an unknown phone UID becomes ``unknown_tag``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from homecall import signing
from homecall.carer_token import TOKEN_RECORD_TYPE, CarerTokenError, parse_token_payload


@dataclass(frozen=True, slots=True)
class TokenCheck:
    carer_id: str | None  # set only when the token is valid
    reason: str  # "ok", "absent", "malformed", "forged", "expired", "no_key"


def iter_records(message: bytes) -> list[tuple[int, bytes, bytes]]:
    """(TNF, type, payload) of each record in an NDEF message; stops at the first bad one."""
    records: list[tuple[int, bytes, bytes]] = []
    i = 0
    while i < len(message):
        header = message[i]
        tnf = header & 0x07
        short = bool(header & 0x10)
        has_id = bool(header & 0x08)
        i += 1
        if i >= len(message):
            break
        type_len = message[i]
        i += 1
        if short:
            if i >= len(message):
                break
            payload_len = message[i]
            i += 1
        else:
            if i + 4 > len(message):
                break
            payload_len = int.from_bytes(message[i : i + 4], "big")
            i += 4
        id_len = 0
        if has_id:
            if i >= len(message):
                break
            id_len = message[i]
            i += 1
        end = i + type_len + id_len + payload_len
        if end > len(message):
            break
        record_type = message[i : i + type_len]
        payload = message[i + type_len + id_len : end]
        records.append((tnf, bytes(record_type), bytes(payload)))
        i = end
        if header & 0x40:  # ME: last record
            break
    return records


def check_carer_token(message: bytes | None, public_key: bytes | None, now: datetime) -> TokenCheck:
    """Verify the carer token in ``message`` (NDEF bytes) with central's ``public_key``."""
    if not message:
        return TokenCheck(None, "absent")
    payloads = [p for tnf, t, p in iter_records(message) if tnf == 4 and t == TOKEN_RECORD_TYPE]
    if not payloads:
        return TokenCheck(None, "absent")
    if public_key is None:
        return TokenCheck(None, "no_key")
    try:
        fields = parse_token_payload(payloads[0])
    except CarerTokenError:
        return TokenCheck(None, "malformed")
    try:
        signing.verify(public_key, fields.signed, fields.signature)
    except signing.SigningError:
        return TokenCheck(None, "forged")
    if now >= fields.expires_at:
        return TokenCheck(None, "expired")
    return TokenCheck(fields.carer_id, "ok")


def verify_carer_token(
    message: bytes | None, public_key: bytes | None, now: datetime
) -> str | None:
    """The carer id proven by the token in ``message``, or None (absent/forged/expired)."""
    return check_carer_token(message, public_key, now).carer_id
