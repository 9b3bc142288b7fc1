"""Who is looking at a page, and CSRF protection for the desk's forms.

Pages use the staff session cookie that ``POST /api/auth/login`` (or the login page) sets.
A page asked for without a valid session redirects to the login page; a role that may not
read care data gets a 403 page. Every form carries a CSRF token: a random value kept in a
``homecall_csrf`` cookie (SameSite=Strict) and repeated in a hidden field; a POST whose field
does not match its cookie is refused with 403 before anything else runs (double-submit: a
page on another site can neither read the cookie nor set it).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from fastapi import HTTPException, Request

from central import CentralError
from central.auth.deps import SESSION_COOKIE, get_accounts, get_people
from central.auth.service import AuthUser

CSRF_COOKIE = "homecall_csrf"
CSRF_FIELD = "csrf_token"
#: Login roles that may use the desk pages (installers use the API and the walk-test).
DESK_ROLES = frozenset({"monitor", "coordinator", "manager", "admin"})


class LoginRequired(CentralError):
    """No valid session: the page redirects to the login page."""


def csrf_token(request: Request) -> str:
    """The token this browser's forms carry (made now if it has none yet)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``), after the CSRF check."""
    body = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.get(CSRF_FIELD, "")
    if not cookie or not sent or not hmac.compare_digest(cookie, sent):
        raise HTTPException(status_code=403, detail="the form's security token is missing or "
                            "does not match: reload the page and try again")
    return fields


def page_user(request: Request) -> AuthUser:
    """The logged-in user of a page request (``LoginRequired`` without one)."""
    token = request.cookies.get(SESSION_COOKIE)
    db, clock = request.app.state.db, request.app.state.clock
    accounts = get_accounts(request, db, clock)
    user = accounts.resolve(token) if token else None
    if user is None:
        raise LoginRequired()
    if user.role not in DESK_ROLES:
        raise HTTPException(status_code=403, detail=f"role {user.role!r} has no desk pages")
    return user


def allowed_gateways(request: Request, user: AuthUser) -> frozenset[str] | None:
    """The gateways whose data ``user`` may see (None: every one)."""
    if user.spans_all_organisations:
        return None
    return get_people(request.app.state.db, request.app.state.clock).gateway_ids(
        user.organisation_id)
