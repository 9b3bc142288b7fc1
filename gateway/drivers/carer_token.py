"""Offline verification of a signed carer token read from an NDEF message.

The gateway holds central's Ed25519 public key (delivered with provisioning) and checks a
token found on a tapped phone or card without any network: signature, then expiry against
the injected clock's time. Format and signing live in :mod:`homecall.carer_token`. Anything
that is not a valid, unexpired token signed by that key yields ``None`` plus a reason, and
the tap is then handled as the bare tag UID (an unknown phone UID becomes ``unknown_tag``).
NDEF records are decoded by ndeflib (``ndef``); chunked records are joined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ndef

from homecall import signing
from homecall.carer_token import TOKEN_RECORD_TYPE, CarerTokenError, parse_token_payload


@dataclass(frozen=True, slots=True)
class TokenCheck:
    carer_id: str | None  # set only when the token is valid
    reason: str  # "ok", "absent", "malformed", "forged", "expired", "no_key"


_TNF_PREFIXES = ((4, "urn:nfc:ext:"), (1, "urn:nfc:wkt:"))


def _tnf_and_type(record_type: str) -> tuple[int, bytes]:
    """ndeflib's record type string back to the NDEF (TNF, TYPE) pair."""
    for tnf, prefix in _TNF_PREFIXES:
        if record_type.startswith(prefix):
            return tnf, record_type[len(prefix):].encode()
    if record_type == "":
        return 0, b""
    if record_type in ("unknown", "unchanged"):
        return (5 if record_type == "unknown" else 6), b""
    if "/" in record_type and ":" not in record_type:
        return 2, record_type.encode()
    return 3, record_type.encode()


def iter_records(message: bytes) -> list[tuple[int, bytes, bytes]]:
    """(TNF, type, payload) of each record in an NDEF message, decoded by ndeflib; stops at
    the first record that cannot be decoded. ndeflib (0.3.3) yields each chunk of a chunked
    record separately: the middle and last chunks have TNF 6 ("unchanged"), which NDEF allows
    nowhere else, so their payloads are joined onto the record they continue."""
    records: list[tuple[int, bytes, bytes]] = []
    try:
        for record in ndef.message_decoder(message, errors="relax", known_types={}):
            tnf, record_type = _tnf_and_type(record.type)
            if tnf == 6:
                if not records:
                    break  # a continuation chunk with nothing to continue: damaged
                first_tnf, first_type, head = records[-1]
                records[-1] = (first_tnf, first_type, head + bytes(record.data))
                continue
            records.append((tnf, record_type, bytes(record.data)))
    except (ndef.DecodeError, ValueError):
        # Keep what came before the damage; a token after it is "absent". ndeflib raises
        # UnicodeDecodeError (a ValueError) for a record type that is not ASCII.
        pass
    return records


def check_carer_token(message: bytes | None, public_key: bytes | None, now: datetime) -> TokenCheck:
    """Verify the carer token in ``message`` (NDEF bytes) with central's ``public_key``."""
    if not message:
        return TokenCheck(None, "absent")
    payloads = [p for tnf, t, p in iter_records(message)
                if tnf == 4 and t.lower() == TOKEN_RECORD_TYPE]
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
