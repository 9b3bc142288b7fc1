"""Shared fixtures: a real Mosquitto broker, free ports, the ``--run-slow`` switch, and a
check at the end of the session that no log the suite's processes wrote names a person or
holds a raw tag number."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from orchestration.broker import MosquittoBroker
from tests.support.postgres import PostgresUnavailable, PrivatePostgres

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run @pytest.mark.slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long variant: run with `make test-long` (--run-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: What no log written during the suite may hold: a raw tag number (the gateway logs only
#: redacted digests, ``em4100:#…``) or a fixture person's name, phone, address or key-safe
#: note (central holds them and never logs them). The simulator's own log is exempt: it is
#: the fob and the hub, and knows the numbers.
_LEAKS = re.compile(
    r"\b(?:em4100|nfc)[:_-]?[0-9A-Fa-f]{8,}\b"
    r"|Ada [AB]ston|Person [AB]\b|Second Person|Elm (?:Road|Court)|\+44 7700 9000\d\d"
    r"|key safe by the back door")


@pytest.fixture(scope="session", autouse=True)
def logs_hold_no_tag_numbers_or_names(tmp_path_factory: pytest.TempPathFactory,
                                      ) -> Iterator[None]:
    """After every test: grep each ``*.log`` under the session's temporary directory
    (central, ingest workers, gateways, Mosquitto) for :data:`_LEAKS`."""
    yield
    base = tmp_path_factory.getbasetemp()
    leaks = []
    for path in sorted(base.rglob("*.log")):
        if path.name == "sim.log" or not path.is_file():
            continue
        found = _LEAKS.search(path.read_text(errors="replace"))
        if found:
            leaks.append(f"{path.relative_to(base)}: {found.group(0)!r}")
    assert not leaks, "logs hold what they must not:\n" + "\n".join(leaks)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private Mosquitto with per-gateway passwords and the production ACL."""
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01,
             message: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL server for the whole run (fails, never skips, if missing)."""
    try:
        server = PrivatePostgres().start()
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each engine central supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    server: PrivatePostgres = request.getfixturevalue("postgres_server")
    return server.new_database()
