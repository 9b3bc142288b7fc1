"""Ingest scaled out: two ``homecall central ingest`` processes share the broker's
subscription and write to one PostgreSQL; one is killed -9 mid-stream and started again.
Every event a gateway published is stored once, and the gateway's ack reaches the last
seq (acks come from the database, so two workers storing parts of one stream agree). The
time-based jobs run in one worker and move to the other when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from central.db.engine import Database
from central.db.tables import events, gateways
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.central.test_ingest import GatewayClient, journal_events
from tests.conftest import wait_for
from tests.support.postgres import PrivatePostgres

GW = "gw-ingest-1"  # the id journal_events makes events for


def _worker(url: str, broker: MosquittoBroker, name: str, log: Path,
            *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "homecall.cli", "central", "ingest", "--db", url,
         "--mqtt-port", str(broker.port), "--mqtt-user", CENTRAL_USER,
         "--mqtt-password-file", str(broker.credentials_file(CENTRAL_USER)),
         "--mqtt-client-id", name, *extra],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=os.environ.copy())


@pytest.fixture
def database(postgres_server: PrivatePostgres) -> Iterator[tuple[str, Database]]:
    url = postgres_server.new_database()
    db = Database(url)
    yield url, db
    db.dispose()


def test_two_workers_one_killed_store_every_event_once_and_ack_the_end(
    broker: MosquittoBroker, database: tuple[str, Database], tmp_path: Path,
) -> None:
    url, db = database
    broker.add_user(GW)
    workers = {name: _worker(url, broker, name, tmp_path / f"{name}.log")
               for name in ("central-ingest-1", "central-ingest-2")}

    def stored() -> int:
        try:
            with db.read() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(events)
                                        .where(events.c.gateway_id == GW)).scalar_one())
        except Exception:  # the schema is being created by the first worker
            return -1

    wait_for(lambda: stored() >= 0, timeout=60, message="the workers to migrate the schema")
    gateway = GatewayClient(broker, GW)
    try:
        batch = journal_events(tmp_path, 300)
        for event in batch[:150]:
            gateway.publish(event.to_bytes())
        wait_for(lambda: stored() >= 50, timeout=60, message="some events stored")
        workers["central-ingest-1"].send_signal(signal.SIGKILL)
        workers["central-ingest-1"].wait(timeout=10)
        for event in batch[150:]:
            gateway.publish(event.to_bytes())
        workers["central-ingest-1"] = _worker(url, broker, "central-ingest-1",
                                              tmp_path / "central-ingest-1.log")
        wait_for(lambda: stored() == 300, timeout=120, message="all 300 events stored")
        wait_for(lambda: gateway.acks and max(gateway.acks) == 300, timeout=60,
                 message="the ack of seq 300")
        with db.read() as conn:
            seqs = conn.execute(sa.select(events.c.seq).where(events.c.gateway_id == GW)
                                .order_by(events.c.seq)).scalars().all()
            contiguous = conn.execute(sa.select(gateways.c.contiguous_seq).where(
                gateways.c.id == GW)).scalar_one()
        assert seqs == list(range(1, 301)) and contiguous == 300
    finally:
        gateway.close()
        for worker in workers.values():
            worker.terminate()
            worker.wait(timeout=30)


def test_the_jobs_run_in_one_worker_and_move_when_it_dies(
    broker: MosquittoBroker, database: tuple[str, Database], tmp_path: Path,
) -> None:
    """Both workers are started with --supervise; PostgreSQL's advisory lock lets one lead.
    Killed -9, its connection (and lock) goes, and the other takes the jobs within seconds."""
    url, _ = database
    logs = {name: tmp_path / f"{name}.log" for name in ("central-ingest-1", "central-ingest-2")}
    workers = {name: _worker(url, broker, name, log, "--supervise")
               for name, log in logs.items()}

    def leaders() -> list[str]:
        return [name for name, log in logs.items()
                if log.exists() and "took the jobs lead" in log.read_text()]

    try:
        wait_for(lambda: all(log.exists() and "central ingest" in log.read_text()
                             for log in logs.values()), timeout=60, message="both workers up")
        [leader] = wait_for(leaders, timeout=30, message="one worker leading the jobs")
        [other] = [name for name in logs if name != leader]
        workers[leader].send_signal(signal.SIGKILL)
        workers[leader].wait(timeout=10)
        wait_for(lambda: other in leaders(), timeout=30,
                 message="the other worker taking the jobs over")
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
