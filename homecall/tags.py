"""Carer tag identifiers: canonical form, pseudonymous digests and log redaction.

A tag is written ``em4100:<10 hex>`` (125 kHz fob: version byte + 32-bit id) or
``nfc:<4-10 byte UID hex>`` (ISO 14443 card or phone). Central knows which carer holds which
tag; the gateway only receives salted digests of tags (so a stolen gateway SD card does not
list anyone's fob numbers), hashes what it reads, and compares. Logs show :func:`redact`
output only, never a UID.

On the gateway a tag read becomes a :func:`pseudonym` (``em4100#<salted digest>``) before
the rules engine sees it, so nothing the gateway writes (journalled engine inputs, events,
logs) holds a UID. Redaction is salted per household (:func:`set_redaction_salt`; the
gateway uses its plan's tag salt) and shows 48 bits of the digest, so the same fob does not
link across homes.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from homecall import HomeCallError

_TAG_RE = re.compile(r"(em4100):([0-9A-F]{10})|(nfc):((?:[0-9A-F]{2}){4,10})")


class TagError(HomeCallError, ValueError):
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


_PSEUDONYM_RE = re.compile(r"(em4100|nfc|tag)#([0-9a-f]{32})")

#: The salt :func:`redact` uses when none is given (the household's, once known).
_redaction_salt = secrets.token_hex(16)


def set_redaction_salt(salt: str) -> None:
    """Salt every later :func:`redact` without an explicit salt (the household's tag salt)."""
    global _redaction_salt
    _redaction_salt = salt


def pseudonym(salt: str, tag: str) -> str:
    """``kind#<salted digest>``: what the gateway keeps of a tag read (already a pseudonym:
    returned as it is). Matches a plan's ``tag_digests`` under the same salt."""
    if _PSEUDONYM_RE.fullmatch(tag):
        return tag
    try:
        canonical = canonical_tag(tag)
    except TagError:
        digest = hashlib.sha256(f"{salt}\x00{tag.strip().upper()}".encode()).hexdigest()[:32]
        return f"tag#{digest}"
    return f"{canonical.partition(':')[0]}#{tag_digest(salt, canonical)}"


def split_pseudonym(tag: str) -> tuple[str, str] | None:
    """``(kind, digest)`` of a :func:`pseudonym`, or None for anything else."""
    match = _PSEUDONYM_RE.fullmatch(tag)
    return None if match is None else (match.group(1), match.group(2))


def redact(tag: str, salt: str | None = None) -> str:
    """What logs and events may show of a tag: its kind and 48 bits of its digest salted per
    household (``salt``, default :func:`set_redaction_salt`'s), never the UID."""
    kind, digest = split_pseudonym(pseudonym(_redaction_salt if salt is None else salt, tag)) \
        or ("tag", "")
    return f"{kind}:#{digest[:12]}"
