"""Staff accounts for tests: create users straight in central's database and log a
TestClient in with a bearer token (what an API client does)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from central.auth.service import Accounts, AuthUser
from homecall.clock import Clock

PASSWORD = "correct horse battery staple"


def create_user(app: FastAPI, username: str, role: str, organisation_id: str | None,
                password: str = PASSWORD) -> AuthUser:
    clock: Clock = app.state.clock
    return Accounts(app.state.db, clock).create_user(username, password, role,
                                                     organisation_id)


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in as ``username``; the headers that authenticate as them."""
    response = client.post("/api/auth/login", json={
        "username": username, "password": password, "session": "bearer"})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


def log_in_admin(client: TestClient, app: FastAPI, username: str = "admin") -> None:
    """Create an all-organisation admin and make every request of ``client`` use it."""
    create_user(app, username, "admin", None)
    client.headers.update(bearer(client, username))
