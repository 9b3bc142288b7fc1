"""Signed carer tokens: central signs (homecall.carer_token), the gateway verifies offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.drivers.carer_token import check_carer_token, iter_records, verify_carer_token
from homecall.carer_token import (
    CarerTokenError,
    generate_signing_key,
    public_key_for,
    sign_carer_token,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_round_trip_and_size() -> None:
    private, public = generate_signing_key()
    assert public_key_for(private) == public
    message = sign_carer_token(private, "c-1234567890abcdefgh", NOW + timedelta(days=7))
    assert len(message) <= 144 - 4  # fits an NTAG213 with its TLV header
    assert verify_carer_token(message, public, NOW) == "c-1234567890abcdefgh"
    [(tnf, rtype, _)] = iter_records(message)
    assert (tnf, rtype) == (4, b"homecall.uk:ct")


def test_expiry_is_exclusive_and_keys_matter() -> None:
    private, public = generate_signing_key()
    _, other_public = generate_signing_key()
    message = sign_carer_token(private, "c-1", NOW)
    assert check_carer_token(message, public, NOW).reason == "expired"
    assert check_carer_token(message, public, NOW - timedelta(seconds=1)).carer_id == "c-1"
    assert check_carer_token(message, other_public, NOW - timedelta(hours=1)).reason == "forged"
    assert check_carer_token(message, None, NOW).reason == "no_key"


@pytest.mark.parametrize("message", [b"", b"\xd4", b"\xd4\x0e\x05homecall.uk:ct\x01\x02", None])
def test_malformed_or_absent(message: bytes | None) -> None:
    _, public = generate_signing_key()
    assert check_carer_token(message, public, NOW).carer_id is None


def test_naive_expiry_refused() -> None:
    private, _ = generate_signing_key()
    with pytest.raises(CarerTokenError):
        sign_carer_token(private, "c-1", datetime(2026, 1, 1))


def _chunked(record_type: bytes, payload: bytes, sizes: list[int]) -> bytes:
    """One NDEF record split into chunks (first chunk carries the type, the rest TNF 6)."""
    parts, at = [], 0
    for size in sizes:
        parts.append(payload[at : at + size])
        at += size
    parts.append(payload[at:])
    out = b""
    for i, part in enumerate(parts):
        first, last = i == 0, i == len(parts) - 1
        header = (0x80 if first else 0) | (0x40 if last else 0) | (0 if last else 0x20) | 0x10
        header |= 4 if first else 6
        out += bytes([header, len(record_type) if first else 0, len(part)])
        out += (record_type if first else b"") + part
    return out


def test_chunked_token_record_is_joined() -> None:
    from homecall.carer_token import TOKEN_RECORD_TYPE, token_payload

    private, public = generate_signing_key()
    payload = token_payload(private, "c-chunked", NOW + timedelta(days=1))
    message = _chunked(TOKEN_RECORD_TYPE, payload, [20, 30])
    assert check_carer_token(message, public, NOW).carer_id == "c-chunked"
    # Cut inside the last chunk: the token is incomplete, so it is not accepted.
    assert check_carer_token(message[:-5], public, NOW).carer_id is None


def test_token_after_another_record_is_found() -> None:
    import ndef

    private, public = generate_signing_key()
    token = sign_carer_token(private, "c-2", NOW + timedelta(days=1))
    [token_record] = list(ndef.message_decoder(token, known_types={}))
    uri = ndef.UriRecord("https://example.org/")
    message = b"".join(ndef.message_encoder([uri, token_record]))
    assert check_carer_token(message, public, NOW).carer_id == "c-2"


def test_non_ascii_record_type_is_damage_not_a_crash() -> None:
    # Found by `homecall bench fuzz`: ndeflib raised UnicodeDecodeError on such a type.
    _, public = generate_signing_key()
    message = bytes([0xD4, 3, 1]) + b"a\xf4b" + b"x"
    assert check_carer_token(message, public, NOW).reason == "absent"
