"""The gateway's journal file corrupted or truncated while the gateway is down: detected at
start, the damaged file kept beside the new one, a ``journal_damaged`` event reaches central,
recording carries on in a fresh journal numbered after everything central holds (no seq is
reused), and seqs that were only in the damaged file are declared lost, never hidden."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import wait_for
from tests.faults.harness import FaultRig, unknown_tag


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * 4096
    data[4096:4096 + 2048] = b"\xa5" * 2048  # garble page 2 (the events b-tree)
    path.write_bytes(bytes(data))


def checkpoint(path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_corrupted_journal_everything_delivered(tmp_path: Path, central_db: str | None
                                                  ) -> None:
    gw = "gw-corrupt"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        load = rig.load(rate_hz=80, tap_every=10)
        wait_for(lambda: rig.contiguous() > 300, timeout=60, message="traffic delivered")
        load.stop()
        rig.drain()  # all delivered and acked, gateway stopped
        held = int(rig.journal_meta()["last_seq"])
        checkpoint(rig.journal_path)
        corrupt(rig.journal_path)
        rig.stack.start_gateway(gw)
        rig.wait_online()
        for i in range(5):
            rig.tap(unknown_tag(10_000 + i))
        rig.drain()
        kept = list(rig.journal_path.parent.glob("journal.db.damaged-*"))
        assert kept, "the damaged journal must be kept for inspection"
        events = rig.assert_nothing_lost_nothing_twice(chain_breaks=1)
        damaged = [e for e in events if e["type"] == "journal_damaged"]
        assert len(damaged) == 1 and int(damaged[0]["seq"]) > held
        kept_as = json.loads(damaged[0]["data"])["kept_as"]
        assert (rig.journal_path.parent / kept_as).exists()


def test_truncated_journal_with_undelivered_events(tmp_path: Path, central_db: str | None
                                                    ) -> None:
    gw = "gw-truncate"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        load = rig.load(rate_hz=80, tap_every=10)
        wait_for(lambda: rig.contiguous() > 200, timeout=60, message="traffic delivered")
        assert rig.stack.relay is not None
        rig.stack.relay.cut()
        delivered = rig.contiguous()
        wait_for(lambda: int(rig.journal_meta()["last_seq"]) > delivered + 300, timeout=60,
                 message="an undelivered backlog")
        load.stop()
        rig.stack.stop_gateway(gw)
        checkpoint(rig.journal_path)
        held = int(rig.journal_meta()["last_seq"])
        delivered = rig.contiguous()
        size = rig.journal_path.stat().st_size
        with rig.journal_path.open("r+b") as handle:
            handle.truncate(size // 2)
        rig.stack.relay.restore()
        rig.stack.start_gateway(gw)
        rig.wait_online()
        for i in range(5):
            rig.tap(unknown_tag(20_000 + i))
        rig.drain()
        assert list(rig.journal_path.parent.glob("journal.db.damaged-*"))
        # Intact events are recovered from the damaged file's raw pages; what is neither
        # recovered nor at central is declared lost (bounded by the undelivered backlog).
        events = rig.assert_nothing_lost_nothing_twice(chain_breaks=1, lost=-(held - delivered))
        damaged = [e for e in events if e["type"] == "journal_damaged"]
        assert len(damaged) == 1 and json.loads(damaged[0]["data"])["recovered"] > 0
        after = [e for e in events
                 if e["type"] == "unknown_tag" and e["seq"] > damaged[0]["seq"]]
        assert len(after) >= 5  # recording carried on in the new journal
