"""Signed carer tokens carried on a phone or card as an NDEF record: format and signing.

Central signs, the gateway verifies offline (``gateway.drivers.carer_token``); this module
owns the byte format both sides share and the signing half, so central can issue tokens
without importing any driver. A token is one NFC Forum external-type record
``urn:nfc:ext:homecall.uk:ct`` whose payload is::

    version (1 byte, 0x01) | expires (uint32 big-endian, Unix seconds UTC)
    | carer id length (1 byte) | carer id (UTF-8) | Ed25519 signature (64 bytes)

The signature covers ``b"homecall/carer-token/v1\\x00"`` followed by every payload byte
before it. Keys are raw 32-byte Ed25519 keys (``homecall.signing``). A token with a carer id of
20 characters is a 94-byte NDEF message, which fits an NTAG213's 144 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from homecall import HomeCallError, signing

TOKEN_RECORD_TYPE = b"homecall.uk:ct"  # NDEF TNF 4 (external), i.e. urn:nfc:ext:homecall.uk:ct
TOKEN_VERSION = 1
SIGNATURE_CONTEXT = b"homecall/carer-token/v1\x00"
SIGNATURE_LEN = 64


class CarerTokenError(HomeCallError, ValueError):
    """A token that cannot be built or parsed."""


@dataclass(frozen=True, slots=True)
class TokenFields:
    carer_id: str
    expires_at: datetime
    signed: bytes  # the bytes the signature covers (context + payload head)
    signature: bytes


def generate_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as (private raw 32 bytes, public raw 32 bytes)."""
    return signing.generate_key_pair()


def public_key_for(private_key: bytes) -> bytes:
    return signing.public_key_for(private_key)


def token_payload(private_key: bytes, carer_id: str, expires_at: datetime) -> bytes:
    """The signed record payload for ``carer_id``, valid until ``expires_at`` (aware)."""
    if expires_at.tzinfo is None:
        raise CarerTokenError("expires_at must be timezone-aware")
    ident = carer_id.encode("utf-8")
    if not 1 <= len(ident) <= 64:
        raise CarerTokenError("carer id must be 1..64 bytes of UTF-8")
    expires = int(expires_at.astimezone(UTC).timestamp())
    if not 0 < expires < 2**32:
        raise CarerTokenError("expiry out of range")
    head = bytes([TOKEN_VERSION]) + expires.to_bytes(4, "big") + bytes([len(ident)]) + ident
    signature = signing.sign(private_key, SIGNATURE_CONTEXT + head)
    return head + signature


def encode_ndef_record(record_type: bytes, payload: bytes) -> bytes:
    """One NDEF message holding one external-type record (short or long form)."""
    if len(payload) < 256:
        header = bytes([0xD4, len(record_type), len(payload)])  # MB ME SR, TNF 4
    else:
        header = bytes([0xC4, len(record_type)]) + len(payload).to_bytes(4, "big")
    return header + record_type + payload


def sign_carer_token(private_key: bytes, carer_id: str, expires_at: datetime) -> bytes:
    """The NDEF message bytes to write to a carer's card or serve from their phone."""
    return encode_ndef_record(TOKEN_RECORD_TYPE, token_payload(private_key, carer_id, expires_at))


def parse_token_payload(payload: bytes) -> TokenFields:
    """Split a record payload into its fields (no signature check); CarerTokenError if bad."""
    if len(payload) < 6 + 1 + SIGNATURE_LEN or payload[0] != TOKEN_VERSION:
        raise CarerTokenError("not a version 1 carer token")
    expires = int.from_bytes(payload[1:5], "big")
    length = payload[5]
    end = 6 + length
    if length == 0 or len(payload) != end + SIGNATURE_LEN:
        raise CarerTokenError("carer token length mismatch")
    try:
        carer_id = payload[6:end].decode("utf-8")
    except UnicodeDecodeError as err:
        raise CarerTokenError("carer id is not UTF-8") from err
    return TokenFields(
        carer_id=carer_id,
        expires_at=datetime.fromtimestamp(expires, UTC),
        signed=SIGNATURE_CONTEXT + payload[:end],
        signature=payload[end:],
    )
