"""Logging in and out: session cookies for browsers, bearer tokens for API clients, expiry
on the injected clock, throttling of failed logins, and no password or token ever kept or
logged in clear."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from central.app import create_app
from central.db.engine import Database
from central.db.schema import metadata
from central.settings import CentralSettings
from homecall.cli import main
from tests.central.conftest import World
from tests.support.auth import PASSWORD, bearer, create_user


def test_anonymous_and_bad_credentials_get_401(world: World) -> None:
    client = world.client
    assert client.get("/api/health").json()["database_ok"]  # no login needed (no broker: 503)
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/api/alerts", headers={"authorization": "Bearer nope"}).status_code == 401
    response = client.post("/api/auth/login", json={"username": "monitor-a", "password": "x"})
    assert response.status_code == 401
    unknown = client.post("/api/auth/login", json={"username": "nobody", "password": "x"})
    assert unknown.json() == response.json()  # says nothing about which part was wrong


def test_browser_login_sets_a_safe_cookie_and_logout_ends_it(world: World) -> None:
    client = world.client
    response = client.post("/api/auth/login",
                           json={"username": "monitor-a", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["token"] is None  # the cookie's value is not readable by scripts
    cookie = response.headers["set-cookie"].lower()
    assert "homecall_session=" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP, settings do not force it
    assert client.get("/api/auth/me").json()["username"] == "monitor-a"
    assert client.post("/api/auth/logout").status_code == 204
    client.cookies.clear()
    assert client.get("/api/auth/me").status_code == 401


def test_cookie_is_secure_over_tls(world: World) -> None:
    with TestClient(world.app, base_url="https://testserver") as tls_client:
        response = tls_client.post("/api/auth/login",
                                   json={"username": "monitor-a", "password": PASSWORD})
    assert "secure" in response.headers["set-cookie"].lower()


def test_cookie_is_secure_when_settings_say_so(database_url: str, tmp_path: Path) -> None:
    settings = CentralSettings(database=database_url, db_path=tmp_path / "s.db",
                               cookie_secure=True)
    app = create_app(settings, with_ingest=False)
    with TestClient(app) as client:
        create_user(app, "boss", "admin", None)
        response = client.post("/api/auth/login", json={"username": "boss", "password": PASSWORD})
    assert "secure" in response.headers["set-cookie"].lower()


def test_bearer_token_works_until_logout_or_expiry(world: World) -> None:
    client = world.client
    headers = bearer(client, "coordinator-a")
    assert client.get("/api/auth/me", headers=headers).json()["role"] == "coordinator"
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    headers = bearer(client, "coordinator-a")
    world.clock.advance(29 * 86400)
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    world.clock.advance(2 * 86400)  # bearer tokens last 30 days
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_session_cookie_expires_on_the_clock(world: World) -> None:
    client = world.client
    client.post("/api/auth/login", json={"username": "manager-a", "password": PASSWORD})
    world.clock.advance(11 * 3600)
    assert client.get("/api/auth/me").status_code == 200
    world.clock.advance(2 * 3600)  # sessions last 12 hours
    assert client.get("/api/auth/me").status_code == 401


def test_failed_logins_are_throttled_per_user(world: World) -> None:
    client = world.client
    for _ in range(5):
        assert client.post("/api/auth/login", json={
            "username": "monitor-a", "password": "wrong"}).status_code == 401
    # even the right password is refused while throttled
    refused = client.post("/api/auth/login", json={"username": "monitor-a",
                                                   "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 900
    # other users are not affected
    assert client.post("/api/auth/login", json={
        "username": "manager-a", "password": PASSWORD}).status_code == 200
    world.clock.advance(int(refused.headers["retry-after"]))
    assert client.post("/api/auth/login", json={
        "username": "monitor-a", "password": PASSWORD}).status_code == 200


def test_failed_logins_are_throttled_per_client_address(world: World) -> None:
    client = world.client
    for i in range(20):  # 4 guesses each at 5 user names: no single user reaches its limit
        response = client.post("/api/auth/login", json={
            "username": f"guess-{i % 5}", "password": "wrong"})
        assert response.status_code == 401
    refused = client.post("/api/auth/login", json={"username": "installer-a",
                                                   "password": PASSWORD})
    assert refused.status_code == 429
    world.clock.advance(901)
    assert client.post("/api/auth/login", json={
        "username": "installer-a", "password": PASSWORD}).status_code == 200


def _database_text(database_url: str) -> str:
    db = Database(database_url)
    chunks = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            chunks += [repr(tuple(row)) for row in conn.execute(sa.select(table))]
    db.dispose()
    return "\n".join(chunks)


def test_passwords_and_tokens_are_never_stored_or_logged_in_clear(
    world: World, database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-horse-battery-9"
    client = world.client
    response = client.post("/api/users", headers=world.headers["manager"], json={
        "username": "newbie", "password": secret, "role": "monitor"})
    assert response.status_code == 201
    assert client.post("/api/auth/login", json={"username": "newbie",
                                                "password": "wrong " + secret}).status_code == 401
    login = client.post("/api/auth/login", json={"username": "newbie", "password": secret,
                                                 "session": "bearer"})
    token = login.json()["token"]
    assert token
    cookie_login = client.post("/api/auth/login", json={"username": "newbie", "password": secret})
    cookie = cookie_login.cookies["homecall_session"]
    stored = _database_text(database_url)
    assert "newbie" in stored  # the dump does see the user's row
    for clear in (secret, token, cookie):
        assert clear not in stored
        assert clear not in caplog.text
    assert "$argon2id$" in stored


def test_create_user_command_makes_the_first_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    db_path = tmp_path / "central.db"
    password_file = tmp_path / "pw"
    password_file.write_text("first admin password\n")
    assert main(["central", "create-user", "chief", "--db", str(db_path),
                 "--password-file", str(password_file)]) == 0
    monkeypatch.setenv("HOMECALL_NEW_USER_PASSWORD", "another long password")
    assert main(["central", "create-user", "deputy", "--db", str(db_path)]) == 0
    assert main(["central", "create-user", "deputy", "--db", str(db_path)]) == 2
    out = capsys.readouterr()
    assert "created admin chief (all organisations)" in out.out
    assert "already taken" in out.err
    for clear in ("first admin password", "another long password"):
        assert clear not in out.out + out.err
    app = create_app(CentralSettings(db_path=db_path), with_ingest=False)
    with TestClient(app) as client:
        response = client.post("/api/auth/login", json={
            "username": "chief", "password": "first admin password", "session": "bearer"})
        assert response.json()["user"]["role"] == "admin"
    assert "first admin password" not in db_path.read_bytes().decode("latin-1")


def test_managers_create_users_only_in_their_organisation(world: World) -> None:
    client, manager = world.client, world.headers["manager"]
    response = client.post("/api/users", headers=manager, json={
        "username": "m2", "password": "long enough pw", "role": "admin"})
    assert response.status_code == 403
    response = client.post("/api/users", headers=manager, json={
        "username": "m2", "password": "long enough pw", "role": "monitor",
        "organisation_id": world.b.id})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "organisation_id"]
    response = client.post("/api/users", headers=manager, json={
        "username": "m2", "password": "short", "role": "monitor"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
    names = {u["username"] for u in client.get("/api/users", headers=manager).json()}
    assert "root" not in names and "monitor-a" in names


def test_deactivating_an_account_ends_its_sessions(world: World) -> None:
    client = world.client
    spare = bearer(client, "spare-a")
    assert client.get("/api/auth/me", headers=spare).status_code == 200
    response = client.delete(f"/api/users/{world.spare_user}", headers=world.headers["manager"])
    assert response.status_code == 204
    assert client.get("/api/auth/me", headers=spare).status_code == 401
    assert client.post("/api/auth/login", json={"username": "spare-a",
                                                "password": PASSWORD}).status_code == 401
    # a manager cannot remove an account of another organisation (it does not exist for them)
    other = create_user(world.app, "monitor-b", "monitor", world.b.id)
    assert client.delete(f"/api/users/{other.id}",
                         headers=world.headers["manager"]).status_code == 404
