"""The FastAPI dependencies that protect central's API: who is calling (``CurrentUser``),
whether their role may do this (``require_roles`` and the named role groups below), and which
organisation's data they may see (``OrgScope``, ``AllowedGateways``).

A request carries either a session cookie (browsers) or ``Authorization: Bearer <token>``
(API clients). No credential, an unknown or an expired one: 401. A known user whose role may
not use the route: 403. Data of another organisation is answered as if it did not exist (404),
so nothing leaks about what exists elsewhere. ``admin`` may use every route; an admin without
an organisation sees every organisation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from central.alerts.actors import Actor
from central.alerts.actors import Role as DeskRole
from central.auth.service import Accounts, AuthUser, Role, ThrottlePolicy
from central.deps import ClockDep, DbDep
from central.people.repository import People

SESSION_COOKIE = "homecall_session"


def get_accounts(request: Request, db: DbDep, clock: ClockDep) -> Accounts:
    settings = request.app.state.settings
    return Accounts(
        db, clock,
        ThrottlePolicy(window_s=settings.login_window_s, per_user=settings.login_failures_per_user,
                       per_address=settings.login_failures_per_address),
        session_ttl=timedelta(hours=settings.session_hours),
        token_ttl=timedelta(days=settings.token_days),
    )


AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def presented_token(request: Request) -> str | None:
    """The credential a request carries: a bearer token, else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def get_current_user(request: Request, accounts: AccountsDep) -> AuthUser:
    token = presented_token(request)
    user = accounts.resolve(token) if token else None
    if user is None:
        raise HTTPException(status_code=401, detail="log in first (session cookie or bearer "
                            "token missing, unknown or expired)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[AuthUser, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[AuthUser], AuthUser]:
    """A dependency that lets through the given roles (and admin, always)."""
    allowed = frozenset((*roles, "admin"))

    def check(user: CurrentUser) -> AuthUser:
        if user.role not in allowed:
            raise HTTPException(status_code=403,
                                detail=f"role {user.role!r} may not do this "
                                       f"(allowed: {', '.join(sorted(allowed))})")
        return user

    check.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return check


#: Every staff role (e.g. reading households and gateways, logging out).
AnyStaff = Annotated[AuthUser, Depends(require_roles(
    "monitor", "coordinator", "manager", "installer"))]
#: Reading people, visits, alerts, plans and reports: the roles that deal with care.
CareReader = Annotated[AuthUser, Depends(require_roles("monitor", "coordinator", "manager"))]
#: Acknowledging and resolving alerts.
AlertWorker = Annotated[AuthUser, Depends(require_roles("monitor", "manager"))]
#: Creating and changing service users, carers and visit plans.
PeopleEditor = Annotated[AuthUser, Depends(require_roles("coordinator", "manager"))]
#: Creating and changing households and their gateways; commands to a gateway.
HomeEditor = Annotated[AuthUser, Depends(require_roles("installer", "manager"))]
#: Managing staff accounts (a manager within their organisation).
UserManager = Annotated[AuthUser, Depends(require_roles("manager"))]
#: The alert desk's role for each login role that works alerts. Monitoring staff and the
#: out-of-hours duty team log in as ``monitor``; a manager (and an admin) may also reopen a
#: resolved alert and sign off an incident record.
DESK_ROLES: dict[Role, DeskRole] = {"monitor": "monitor", "manager": "manager",
                                    "admin": "manager"}


def get_desk_actor(user: AlertWorker) -> Actor:
    """Who works an alert, for the lifecycle and the audit trail: the logged-in user."""
    return Actor(user.username, DESK_ROLES[user.role])


DeskActor = Annotated[Actor, Depends(get_desk_actor)]


def get_manager_actor(user: UserManager) -> Actor:
    """A manager working an alert: reopening, the regulator decision, signing off."""
    return Actor(user.username, DESK_ROLES[user.role])


ManagerActor = Annotated[Actor, Depends(get_manager_actor)]
#: Organisations: admin only.
AdminUser = Annotated[AuthUser, Depends(require_roles())]


def get_people(db: DbDep, clock: ClockDep) -> People:
    return People(db, clock)


PeopleDep = Annotated[People, Depends(get_people)]


def get_allowed_gateways(user: CurrentUser, people: PeopleDep) -> frozenset[str] | None:
    """The gateway ids whose data ``user`` may see; None means every gateway (admin)."""
    if user.spans_all_organisations:
        return None
    return people.gateway_ids(user.organisation_id)


#: What to pass as ``gateways=`` to the view functions.
AllowedGateways = Annotated[frozenset[str] | None, Depends(get_allowed_gateways)]


def visible(allowed: frozenset[str] | None, gateway_id: str) -> bool:
    return allowed is None or gateway_id in allowed


def require_visible(allowed: frozenset[str] | None, gateway_id: str, what: str) -> None:
    """404 (as if absent) for a gateway outside the caller's organisation."""
    if not visible(allowed, gateway_id):
        raise HTTPException(status_code=404, detail=f"no {what} {gateway_id!r}")
