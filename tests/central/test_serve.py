"""``homecall central serve`` as an operator meets it: what it prints at start, a database
it cannot open as one line, the broker's absence logged until it comes, and API docs that
need no internet."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from central.app import create_app
from central.settings import CentralSettings
from orchestration.broker import CENTRAL_USER, MosquittoBroker, free_port
from tests.conftest import wait_for


def homecall(*args: str) -> list[str]:
    return [sys.executable, "-m", "homecall.cli", *args]


def test_a_database_path_that_cannot_be_opened_is_one_line_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    target = blocker / "central.db"
    result = subprocess.run(homecall("central", "serve", "--db", str(target)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(target) in lines[0]
    assert "Traceback" not in result.stderr


class Output:
    """A process's merged output, collected line by line in the background."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, Output, int]]:
    """central serve pointed at a broker that is not running yet."""
    broker = MosquittoBroker(tmp_path / "broker", port=free_port())
    http_port = free_port()
    env = {**os.environ, "HOMECALL_BROKER_REPORT_S": "0.2"}
    process = subprocess.Popen(
        homecall("central", "serve", "--db", f"sqlite:///{tmp_path / 'central.db'}",
                 "--port", str(http_port), "--mqtt-port", str(broker.port),
                 "--mqtt-user", CENTRAL_USER,
                 "--mqtt-password-file", str(broker.credentials_file(CENTRAL_USER))),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    output = Output(process)
    try:
        yield broker, output, http_port
    finally:
        process.terminate()
        process.wait(timeout=30)
        broker.stop()


def test_serve_says_where_it_is_and_keeps_saying_the_broker_is_unreachable_until_it_is(
    serve: tuple[MosquittoBroker, Output, int], tmp_path: Path
) -> None:
    broker, output, http_port = serve
    address = f"127.0.0.1:{broker.port}"
    wait_for(lambda: output.count("central: broker"), timeout=90, message="start-up lines")
    assert output.count(f"central: http://127.0.0.1:{http_port}/") == 1
    assert output.count(f"central: database sqlite:///{tmp_path / 'central.db'}") == 1
    assert output.count(f"central: broker {address} unreachable: Connection refused") == 1
    wait_for(lambda: output.count(f"broker {address} unreachable: Connection refused") >= 3,
             timeout=90, message="repeated unreachable log lines")
    broker.start()
    wait_for(lambda: output.count(f"broker {address} reachable again"), timeout=90,
             message="central to say the broker is back")


def test_api_docs_are_served_from_the_package(tmp_path: Path) -> None:
    app = create_app(CentralSettings(db_path=tmp_path / "central.db"), with_ingest=False)
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text
        assert "/docs/assets/swagger-ui-bundle.js" in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and "SwaggerUIBundle" in script.text
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
        assert client.get("/openapi.json").json()["info"]["title"] == "HomeCall central"
