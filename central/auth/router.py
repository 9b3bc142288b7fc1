"""Login, logout, who am I, and staff accounts.

``POST /api/auth/login`` with ``"session": "cookie"`` (the default, for browsers) sets an
HttpOnly, SameSite=Lax session cookie (Secure when the request came over TLS or the settings
say so) and does not put the token in the body; with ``"session": "bearer"`` (API clients)
the body carries a bearer token and no cookie is set.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import (
    SESSION_COOKIE,
    AccountsDep,
    CurrentUser,
    UserManager,
    presented_token,
)
from central.auth.service import (
    AccountError,
    AuthUser,
    LoginFailed,
    LoginThrottled,
    Role,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/auth", tags=["auth"])
users_router = APIRouter(prefix="/api/users", tags=["users"])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    session: Literal["cookie", "bearer"] = "cookie"


class UserOut(BaseModel):
    id: str
    username: str
    role: Role
    organisation_id: str | None


class LoginResult(BaseModel):
    user: UserOut
    expires_at: datetime
    #: Only for ``"session": "bearer"``: send as ``Authorization: Bearer <token>``.
    token: str | None = None
    token_type: Literal["bearer"] | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    role: Role
    organisation_id: str | None = None


def _out(user: AuthUser) -> UserOut:
    return UserOut(id=user.id, username=user.username, role=user.role,
                   organisation_id=user.organisation_id)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _over_tls(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.settings.cookie_secure)


@router.post("/login", response_model=LoginResult)
def login(body: LoginRequest, request: Request, response: Response,
          accounts: AccountsDep) -> LoginResult:
    try:
        user, issued = accounts.login(body.username, body.password, _client(request),
                                      body.session)
    except LoginThrottled as err:
        log.warning("login throttled for %r from %s", body.username, _client(request))
        raise HTTPException(status_code=429, detail=str(err),
                            headers={"Retry-After": str(err.retry_after_s)}) from err
    except LoginFailed as err:
        log.info("failed login for %r from %s", body.username, _client(request))
        raise HTTPException(status_code=401, detail=str(err)) from err
    log.info("login: %s (%s) from %s", user.username, user.role, _client(request))
    if issued.kind == "cookie":
        response.set_cookie(
            SESSION_COOKIE, issued.token, httponly=True, samesite="lax",
            secure=_over_tls(request), path="/",
            max_age=int((issued.expires_at - accounts.clock.now()).total_seconds()),
        )
        return LoginResult(user=_out(user), expires_at=issued.expires_at)
    return LoginResult(user=_out(user), expires_at=issued.expires_at, token=issued.token,
                       token_type="bearer")


@router.post("/logout", status_code=204)
def logout(user: CurrentUser, request: Request, response: Response,
           accounts: AccountsDep) -> None:
    token = presented_token(request)
    if token:
        accounts.revoke(token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=_over_tls(request))
    log.info("logout: %s", user.username)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return _out(user)


@users_router.get("", response_model=list[UserOut])
def list_users(user: UserManager, accounts: AccountsDep) -> list[UserOut]:
    return [_out(u) for u in accounts.list_users(user.scope)]


@users_router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserIn, user: UserManager, accounts: AccountsDep) -> UserOut:
    organisation = body.organisation_id
    if user.scope is not None:
        if body.role == "admin":
            raise HTTPException(status_code=403, detail="only an admin may create an admin")
        if organisation not in (None, user.scope):
            raise HTTPException(status_code=422, detail=[{
                "loc": ["body", "organisation_id"], "type": "invalid",
                "msg": f"no organisation {organisation!r}"}])
        organisation = user.scope
    try:
        created = accounts.create_user(body.username, body.password, body.role, organisation)
    except AccountError as err:
        field, _, _ = str(err).partition(":")
        raise HTTPException(status_code=422, detail=[{
            "loc": ["body", field], "msg": str(err), "type": "invalid"}]) from err
    log.info("user created: %s (%s) by %s", created.username, created.role, user.username)
    return _out(created)


@users_router.delete("/{user_id}", status_code=204)
def deactivate_user(user_id: str, user: UserManager, accounts: AccountsDep) -> None:
    target = accounts.get_user(user_id)
    if target is None or (user.scope is not None and target.organisation_id != user.scope):
        raise HTTPException(status_code=404, detail=f"no user {user_id!r}")
    if user.scope is not None and target.role == "admin":
        raise HTTPException(status_code=403, detail="only an admin may remove an admin")
    accounts.deactivate(user_id)
    log.info("user deactivated: %s by %s", target.username, user.username)
