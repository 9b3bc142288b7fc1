"""A failed journal commit loses nothing: the whole gateway (simulated reader and hub on ptys,
real Mosquitto, a real journal file) with real SQLite faults injected at the journal's
connection: a read-only database (``PRAGMA query_only``, as a read-only remount), a full
one (``PRAGMA max_page_count`` at its current size, as a full card) and an error from the
connection itself (an authorizer that refuses writes: a ``sqlite3.DatabaseError``, not an
``OperationalError``).

Every case checks what a user would: the carer's feedback, what the journal file holds,
what the gateway reports, and that the engine's state never runs ahead of the journal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.core_loop import Tick
from homecall.plan import Visit
from homecall.wire import AckMessage, Channel
from orchestration.broker import MosquittoBroker
from tests.conftest import wait_for
from tests.gateway.home import CARER_TAG, START, Home, plan_document, running_home, stranger


@pytest.fixture
def home(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Home]:
    with running_home(tmp_path, broker) as running:
        yield running


FAULT = ["led:red:blink", "buzz:long"]


def test_tap_while_the_journal_is_read_only_is_held_then_recorded(home: Home) -> None:
    state_before = home.daemon.host.state
    home.faults.read_only()
    home.clock.advance(5 * 60)
    home.tap(CARER_TAG)
    # The carer is told it did not record; the engine did not move; the journal has nothing.
    wait_for(lambda: home.signals()[-2:] == FAULT, message="the fault pattern")
    assert home.daemon.host.state is state_before
    assert "arrival" not in home.types()
    assert home.daemon.host.held == 1
    home.tap(stranger(1))  # a second tap while the fault lasts is held behind the first
    assert home.signals()[-2:] == FAULT

    home.faults.heal()
    wait_for(lambda: "journal_recovered" in home.types(), message="the held taps journalled")
    types = home.types()
    tail = types[types.index("journal_fault"):]
    assert tail == ["journal_fault", "arrival", "unknown_tag", "journal_recovered"]
    assert types.count("journal_fault") == 1
    arrival = next(e for e in home.events() if e["type"] == "arrival")
    assert (arrival["visit_id"], arrival["carer_id"]) == ("v-1", "c-1")
    assert arrival["time"].startswith("2026-03-02T08:00")  # the tap's time, not the retry's
    # The engine state now holds the arrival, as the journal does (adopted just after the
    # commit the file already shows).
    wait_for(lambda: not home.daemon.host.faulted, message="the host out of its fault")
    assert any(a.open for v in home.daemon.host.state.visits.values() for a in v.attendances)


def test_deadline_during_an_injected_connection_error_fires_after_recovery(home: Home) -> None:
    home.faults.refuse(sqlite3.SQLITE_INSERT)  # a DatabaseError, not an OperationalError
    home.clock.advance(3 * 3600)  # well past the visit: late, then missed
    home.daemon.post(Tick())
    wait_for(lambda: home.daemon.host.faulted, message="the deadline held")
    assert not {"visit_late", "visit_missed"} & set(home.types())
    assert home.daemon.host.state.visits["v-1"].status == "planned"

    home.faults.heal()
    wait_for(lambda: "journal_recovered" in home.types(), message="the deadline journalled")
    types = home.types()
    assert "visit_missed" in types
    assert types.index("journal_fault") < types.index("visit_missed")
    assert types.index("visit_missed") < types.index("journal_recovered")
    fault = next(e for e in home.events() if e["type"] == "journal_fault")
    assert "not authorized" in fault["data"]["reason"]
    assert fault["severity"] == "medium"
    wait_for(lambda: home.daemon.host.state.visits["v-1"].status == "missed",
             message="the engine state adopted")


def test_plan_update_while_the_journal_is_full_is_not_in_force_until_journalled(
    home: Home,
) -> None:
    new = plan_document(START).model_copy(update={"visits": (
        Visit(id="v-2", service_user="su-1", start=START.replace(tzinfo=None)
              + timedelta(hours=2), duration_min=30),)})
    payload = new.for_gateway(version=7, tag_salt="central-salt-1").to_bytes()
    home.faults.full()
    # Fill what room is left with alerts (each tap of a stranger's fob is one), until the
    # journal refuses a write: the fault pattern.
    i = 0
    while home.signals()[-2:] != FAULT:
        i += 1
        assert i < 200, "the capped journal never filled"
        home.tap(stranger(i))
    home.plan_from_central(payload)
    wait_for(lambda: home.daemon.host.held >= 2, message="the plan held behind the tap")
    assert home.daemon.plan_version == 1  # the file's plan stays in force, and says so

    home.faults.heal()
    wait_for(lambda: "journal_recovered" in home.types(), message="the plan journalled")
    wait_for(lambda: home.daemon.plan_version == 7, message="the plan adopted")
    applied = [e["data"] for e in home.events() if e["type"] == "plan_applied"]
    assert applied[-1] == {"version": 7, "visits": 1, "source": "central"}
    assert home.types().count("unknown_tag") == i  # every tap, none lost
    assert set(home.daemon.host.state.visits) == {"v-2"}


def test_a_failing_ack_does_not_take_the_tap_with_it(
    home: Home, caplog: pytest.LogCaptureFixture,
) -> None:
    wait_for(lambda: "gateway_started" in home.types(), message="startup journalled")
    # Central has nothing yet (a fresh journal): the gateway may publish what it holds.
    home.ack_until(AckMessage(seq=0, max_seq=0).to_bytes(),
                   lambda: home.daemon.journal.position_known, "central's position known")
    last = home.events()[-1]["seq"]
    home.faults.refuse(sqlite3.SQLITE_DELETE)  # acks delete; taps only insert
    home.as_central(Channel.ACK, AckMessage(seq=last, max_seq=last).to_bytes())
    wait_for(lambda: "ack not applied" in caplog.text, message="the ack refused")
    home.clock.advance(5 * 60)
    home.tap(CARER_TAG)
    assert home.signals()[-2:] == ["led:green:solid", "buzz:short"]
    wait_for(lambda: "arrival" in home.types(), message="the tap journalled")
    assert home.events()[0]["seq"] == 1  # the ack could not delete anything: all kept
    assert "journal_fault" not in home.types()

    home.faults.heal()
    home.ack_until(AckMessage(seq=last, max_seq=last).to_bytes(),
                   lambda: home.events()[0]["seq"] > last, "the next ack applied")
    assert home.types()[0] == "arrival"

