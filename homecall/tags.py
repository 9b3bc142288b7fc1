"""Carer tag identifiers: canonical form, pseudonymous digests and log redaction.

A tag is written ``em4100:<10 hex>`` (125 kHz fob: version byte + 32-bit id) or
``nfc:<4-10 byte UID hex>`` (ISO 14443 card or phone). Central knows which carer holds which
tag; the gateway only receives salted digests of tags (so a stolen gateway SD card does not
list anyone's fob numbers), hashes what it reads, and compares. Logs show :func:`redact`
output only, never a UID.
"""

from __future__ import annotations

import hashlib
import re

_TAG_RE = re.compile(r"(em4100):([0-9A-F]{10})|(nfc):((?:[0-9A-F]{2}){4,10})")


class TagError(ValueError):
    """A tag identifier that is not in canonical form."""


def canonical_tag(tag: str) -> str:
    """Normalise ``em4100:0f00a1b2c3`` → ``em4100:0F00A1B2C3``; raise TagError if malformed."""
    if not isinstance(tag, str) or ":" not in tag:
        raise TagError(f"tag {tag!r} must look like 'em4100:<10 hex>' or 'nfc:<uid hex>'")
    kind, _, value = tag.partition(":")
    normalised = f"{kind.lower()}:{value.upper()}"
    if not _TAG_RE.fullmatch(normalised):
        raise TagError(
            f"tag {tag!r} must look like 'em4100:<10 hex>' or 'nfc:<8-20 hex digits, whole bytes>'"
        )
    return normalised


def tag_digest(salt: str, tag: str) -> str:
    """Pseudonymous digest of a tag under a household's salt (hex sha256, 32 chars)."""
    return hashlib.sha256(f"{salt}\x00{canonical_tag(tag)}".encode()).hexdigest()[:32]


def redact(tag: str) -> str:
    """What logs may show of a tag: its kind and a short digest, never the UID."""
    kind = tag.partition(":")[0] or "tag"
    short = hashlib.sha256(tag.upper().encode()).hexdigest()[:8]
    return f"{kind}:#{short}"
