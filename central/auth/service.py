"""Staff accounts and their credentials: create users, check passwords (argon2id), issue and
resolve session cookies and bearer tokens, and throttle failed logins.

Passwords are only ever held as argon2 hashes; session cookies and bearer tokens are random
256-bit strings of which only the SHA-256 digest is stored, so a copy of the database lets
no one log in. Every time (expiry, throttling window) comes from the injected clock.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from central import CentralError
from central.auth.tables import login_failures, sessions, users
from central.db.engine import Database
from central.people.tables import organisations
from homecall.clock import Clock, format_utc, parse_utc

Role = Literal["monitor", "coordinator", "manager", "installer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
SessionKind = Literal["cookie", "bearer"]

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
#: Verified against when the user name is unknown, so both cases cost the same time.
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time refusal")


class AuthError(CentralError):
    """Root of the account errors."""


class AccountError(AuthError):
    """A user cannot be created as asked (the message says why)."""


class LoginFailed(AuthError):
    """Wrong user name or password (deliberately not saying which)."""


class LoginThrottled(AuthError):
    """Too many failed attempts recently; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class AuthUser:
    """A logged-in staff member. ``organisation_id`` is None only for an all-organisation
    admin."""

    id: str
    username: str
    role: Role
    organisation_id: str | None

    @property
    def spans_all_organisations(self) -> bool:
        return self.role == "admin" and self.organisation_id is None

    @property
    def scope(self) -> str | None:
        """The organisation this user's data access is limited to; None means all."""
        return None if self.spans_all_organisations else self.organisation_id


@dataclass(frozen=True)
class IssuedSession:
    token: str
    kind: SessionKind
    expires_at: datetime


@dataclass(frozen=True)
class ThrottlePolicy:
    window_s: int = 900
    per_user: int = 5
    per_address: int = 20


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: sa.Row) -> AuthUser:
    return AuthUser(id=row.id, username=row.username, role=row.role,
                    organisation_id=row.organisation_id)


class Accounts:
    """Users, sessions and login throttling, on central's database."""

    def __init__(self, db: Database, clock: Clock, throttle: ThrottlePolicy | None = None,
                 session_ttl: timedelta = timedelta(hours=12),
                 token_ttl: timedelta = timedelta(days=30)) -> None:
        self.db = db
        self.clock = clock
        self.throttle = throttle or ThrottlePolicy()
        self.ttl: dict[SessionKind, timedelta] = {"cookie": session_ttl, "bearer": token_ttl}

    # -- users -----------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str,
                    organisation_id: str | None, *, password_hash: str | None = None) -> AuthUser:
        """A new active account. ``password_hash`` (``hash_password(password)`` computed
        earlier, e.g. off a latency-critical path) saves hashing here."""
        if not USERNAME_RE.fullmatch(username):
            raise AccountError("username: 2-64 characters of a-z, 0-9, '.', '_', '@', '-'")
        if role not in ROLES:
            raise AccountError(f"role: must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
        if organisation_id is None and role != "admin":
            raise AccountError("organisation_id: every role but admin belongs to an organisation")
        user = AuthUser(id=f"u-{uuid.uuid4().hex[:12]}", username=username,
                        role=cast(Role, role), organisation_id=organisation_id)
        with self.db.write() as conn:
            if organisation_id is not None and conn.execute(
                sa.select(organisations.c.id).where(organisations.c.id == organisation_id)
            ).first() is None:
                raise AccountError(f"organisation_id: no organisation {organisation_id!r}")
            if conn.execute(
                sa.select(users.c.id).where(users.c.username == username)
            ).first() is not None:
                raise AccountError(f"username: {username!r} is already taken")
            conn.execute(users.insert().values(
                id=user.id, username=username,
                password_hash=password_hash or hash_password(password),
                role=role, organisation_id=organisation_id, active=True,
                created_at=format_utc(self.clock.now()),
            ))
        return user

    def list_users(self, organisation_id: str | None = None) -> list[AuthUser]:
        query = sa.select(users).where(users.c.active).order_by(users.c.username)
        if organisation_id is not None:
            query = query.where(users.c.organisation_id == organisation_id)
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(query)]

    def get_user(self, user_id: str) -> AuthUser | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.id == user_id, users.c.active)
            ).first()
        return _user(row) if row else None

    def deactivate(self, user_id: str) -> None:
        """Disable an account and end all its sessions."""
        with self.db.write() as conn:
            conn.execute(users.update().where(users.c.id == user_id).values(active=False))
            conn.execute(sessions.delete().where(sessions.c.user_id == user_id))

    def count_users(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    # -- login -----------------------------------------------------------------------------
    def login(self, username: str, password: str, client: str,
              kind: SessionKind) -> tuple[AuthUser, IssuedSession]:
        """Check the password (unless throttled) and issue a session or token."""
        now = self.clock.now()
        keys = {"user": f"user:{username.lower()}", "addr": f"addr:{client}"}
        self._check_throttle(keys, now)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.username == username, users.c.active)
            ).first()
        if not self._password_ok(row.password_hash if row else None, password):
            with self.db.write() as conn:
                # failures older than the window no longer count: forget them
                conn.execute(login_failures.delete().where(login_failures.c.at <= format_utc(
                    now - timedelta(seconds=self.throttle.window_s))))
                conn.execute(login_failures.insert(), [
                    {"key": key, "at": format_utc(now)} for key in keys.values()
                ])
            raise LoginFailed("wrong user name or password")
        assert row is not None
        user = _user(row)
        with self.db.write() as conn:
            # a successful login clears the user's failures (the address's stay counted)
            conn.execute(login_failures.delete().where(login_failures.c.key == keys["user"]))
            if _hasher.check_needs_rehash(row.password_hash):
                conn.execute(users.update().where(users.c.id == user.id)
                             .values(password_hash=hash_password(password)))
        return user, self.issue(user, kind)

    @staticmethod
    def _password_ok(stored: str | None, password: str) -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def _check_throttle(self, keys: dict[str, str], now: datetime) -> None:
        since = format_utc(now - timedelta(seconds=self.throttle.window_s))
        limits = {keys["user"]: self.throttle.per_user, keys["addr"]: self.throttle.per_address}
        with self.db.read() as conn:
            for key, limit in limits.items():
                times = conn.execute(
                    sa.select(login_failures.c.at)
                    .where(login_failures.c.key == key, login_failures.c.at > since)
                    .order_by(login_failures.c.at.desc()).limit(limit)
                ).scalars().all()
                if len(times) >= limit:
                    # refused until the oldest of the last `limit` failures leaves the window
                    free_at = parse_utc(times[-1]) + timedelta(seconds=self.throttle.window_s)
                    raise LoginThrottled(max(1, math.ceil((free_at - now).total_seconds())))

    # -- sessions --------------------------------------------------------------------------
    def issue(self, user: AuthUser, kind: SessionKind) -> IssuedSession:
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        expires = now + self.ttl[kind]
        with self.db.write() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at <= format_utc(now)))
            conn.execute(sessions.insert().values(
                token_hash=token_digest(token), user_id=user.id, kind=kind,
                created_at=format_utc(now), expires_at=format_utc(expires),
            ))
        return IssuedSession(token=token, kind=kind, expires_at=expires)

    def resolve(self, token: str) -> AuthUser | None:
        """The active user a token belongs to, if it exists and has not expired."""
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(users.c.id, users.c.username, users.c.role,
                          users.c.organisation_id, sessions.c.expires_at)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.token_hash == token_digest(token), users.c.active)
            ).first()
        if row is None or parse_utc(row.expires_at) <= self.clock.now():
            return None
        return _user(row)

    def revoke(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_hash == token_digest(token)))
