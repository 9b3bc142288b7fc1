"""No fob number on the gateway's disk: after taps (a carer's and a stranger's), a journal
fault and its recovery, and a restart that replays the journalled engine inputs, every file
the gateway wrote (journal, its WAL and SHM, the device-state file, its debug log) is
searched for the fixture tags' UIDs. Only the installer's own ``--plan`` file (a
coordinator's plan document, which names the tags) may hold them."""

from __future__ import annotations

import logging
from pathlib import Path

from homecall.tags import canonical_tag
from orchestration.broker import MosquittoBroker
from tests.conftest import wait_for
from tests.gateway.home import CARER_TAG, running_home, stranger


def uid_forms(tag: str) -> set[bytes]:
    uid = canonical_tag(tag).partition(":")[2]
    return {uid.upper().encode(), uid.lower().encode()}


def test_no_tag_uid_in_any_file_the_gateway_writes(tmp_path: Path, broker: MosquittoBroker) -> None:
    log_file = tmp_path / "gateway.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    tags = [CARER_TAG, stranger(7)]
    try:
        with running_home(tmp_path, broker) as home:
            home.clock.advance(5 * 60)
            home.tap(CARER_TAG)
            home.faults.read_only()
            home.tap(stranger(7))
            home.faults.heal()
            wait_for(lambda: "journal_recovered" in home.types(), message="recovery")
            assert {"arrival", "unknown_tag"} <= set(home.types())
            assert_no_uid(tmp_path, tags)  # while running: the WAL holds the newest writes
        # A restart replays the journalled engine inputs (pseudonyms) and still matches.
        with running_home(tmp_path, broker) as again:
            assert any(a.open for v in again.daemon.host.state.visits.values()
                       for a in v.attendances), "the replayed state kept the arrival"
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    names = assert_no_uid(tmp_path, tags)
    assert names >= {"journal.db", "devices.json", "gateway.log"}


def assert_no_uid(workdir: Path, tags: list[str]) -> set[str]:
    """Search every file the gateway wrote under ``workdir``; returns their names."""
    written = [p for p in workdir.rglob("*") if p.is_file() and p.name != "plan.json"
               and "broker" not in p.parts and "dev" not in p.parts]
    forbidden = set().union(*(uid_forms(t) for t in tags))
    for path in written:
        data = path.read_bytes()
        found = [f.decode() for f in forbidden if f in data]
        assert not found, f"{path.name} holds tag UID(s) {found}"
    return {p.name for p in written}
