"""Central's store on each engine (SQLite and PostgreSQL): events stored once per
(gateway, seq), the hash chain checked, acks at the highest contiguous seq, gap tombstones,
alert superseding in either arrival order, alert work audited, and the organisation
scoping hook (``gateways=``) on everything routers read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from central.db.engine import Database
from central.db.migrate import upgrade
from central.db.tables import audit, event_gaps, events
from central.store import NotFound, OutOfScope, Store, Superseded
from central.views import (
    list_alerts,
    list_conflicts,
    list_events,
    list_gateways,
    list_visits,
    report,
)
from homecall.plan import PlanDocument
from homecall.wire import GENESIS_HASH, EventEnvelope, EventGap, EventType, Severity

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
GW = "gw-store-1"
OTHER = "gw-store-2"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    db = Database(database_url)
    upgrade(db)
    yield Store(db)
    db.dispose()


class Chain:
    """A gateway's hash-chained events, made the way the wire defines them."""

    def __init__(self, gateway_id: str = GW) -> None:
        self.gateway_id = gateway_id
        self.prev_hash = GENESIS_HASH
        self.seq = 0

    def next(self, type_: EventType = EventType.BATTERY, *, prev_hash: str | None = None,
             **fields: Any) -> EventEnvelope:
        self.seq += 1
        if type_.value in {"unknown_tag", "visit_late", "visit_missed", "no_access"}:
            fields.setdefault("severity", Severity.MEDIUM)
        draft = EventEnvelope(
            id=f"{self.gateway_id}-ev-{self.seq}", gateway_id=self.gateway_id, seq=self.seq,
            type=type_, time=T0 + timedelta(minutes=self.seq), mono=float(self.seq),
            boot_id="boot-1", clock_ok=True, prev_hash=prev_hash or self.prev_hash,
            hash="0" * 64, **fields,
        )
        event = draft.model_copy(update={"hash": draft.expected_hash()})
        self.prev_hash = event.hash
        return event


def pairs(*envelopes: EventEnvelope) -> list[tuple[str, EventEnvelope]]:
    return [(e.gateway_id, e) for e in envelopes]


def chain_flags(store: Store, gateway_id: str = GW) -> dict[int, int | None]:
    return {e["seq"]: e["chain_ok"] for e in list_events(store, gateway_id)}


def test_a_redelivered_event_is_stored_once_and_a_different_one_is_kept_aside(
    store: Store,
) -> None:
    chain = Chain()
    first, second = chain.next(), chain.next()
    result = store.store_events(pairs(first, second), T0)
    assert (result.stored, result.duplicates, result.acks) == (2, 0, {GW: 2})
    again = store.store_events(pairs(first), T0)
    assert (again.stored, again.duplicates, again.conflicts) == (0, 1, 0)
    forged = Chain()
    forged_first = forged.next(data={"volts": 1.0})
    clash = store.store_events(pairs(forged_first), T0)
    assert (clash.stored, clash.conflicts) == (0, 1)
    assert [e["id"] for e in list_events(store, GW)] == [first.id, second.id]
    assert list_events(store, GW)[0]["data"] == {}
    # both claims are kept, the ack drops below the conflict, staff get an integrity alert
    conflicts = list_conflicts(store, GW)
    assert [(c["seq"], c["stored"]["hash"]) for c in conflicts] == [(1, first.hash)]
    assert [c["event"]["data"] for c in conflicts[0]["conflicting"]] == [{"volts": 1.0}]
    assert clash.acks == {GW: 0}
    assert [a["type"] for a in list_alerts(store, GW)] == ["gateway_integrity"]
    assert store.store_events(pairs(forged_first), T0).conflicts == 1  # resent: kept once
    assert len(list_conflicts(store, GW)[0]["conflicting"]) == 1
    assert report(store)["events_duplicated"] == 0


def test_ack_is_the_highest_contiguous_seq_and_the_chain_is_checked_when_the_gap_fills(
    store: Store,
) -> None:
    chain = Chain()
    one, two, three = chain.next(), chain.next(), chain.next()
    assert store.store_events(pairs(one), T0).acks == {GW: 1}
    assert store.store_events(pairs(three), T0).acks == {GW: 1}
    assert store.position(GW) == (1, 3)
    assert chain_flags(store) == {1: 1, 3: None}  # seq 3's predecessor has not arrived
    assert store.store_events(pairs(two), T0).acks == {GW: 3}
    assert chain_flags(store) == {1: 1, 2: 1, 3: 1}
    assert list_gateways(store)[0]["chain_breaks"] == 0


def test_events_out_of_order_within_one_batch_link_up(store: Store) -> None:
    chain = Chain()
    one, two, three, four = (chain.next() for _ in range(4))
    store.store_events(pairs(one, four), T0)
    result = store.store_events(pairs(three, two, three), T0)
    assert (result.stored, result.duplicates, result.acks) == (2, 1, {GW: 4})
    assert chain_flags(store) == {1: 1, 2: 1, 3: 1, 4: 1}


def test_a_broken_link_is_flagged_and_counted(store: Store) -> None:
    chain = Chain()
    one = chain.next()
    two = chain.next(prev_hash="f" * 64)
    store.store_events(pairs(one, two), T0)
    assert chain_flags(store) == {1: 1, 2: 0}
    assert list_gateways(store)[0]["chain_breaks"] == 1


def test_gap_tombstones_move_the_ack_and_a_late_real_event_replaces_its_placeholder(
    store: Store,
) -> None:
    chain = Chain()
    events_ = [chain.next() for _ in range(5)]
    store.store_events(pairs(events_[0], events_[4]), T0)
    dropped = EventGap(gap="dropped", gateway_id=GW, first_seq=2, last_seq=4,
                       prev_hash=events_[0].hash, hash=events_[3].hash, types={"battery": 3})
    result = store.store_gaps([dropped], T0)
    assert (result.stored, result.acks) == (3, {GW: 5})
    assert chain_flags(store) == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    gateway = list_gateways(store)[0]
    assert (gateway["events_stored"], gateway["events_dropped"]) == (5, 3)
    # The real seq 3 was in flight after all: it replaces the placeholder.
    assert store.store_events(pairs(events_[2]), T0).stored == 1
    stored = list_events(store, GW)
    assert [(e["seq"], e["type"]) for e in stored][1:4] == [
        (2, "dropped"), (3, "battery"), (4, "dropped")]


def test_a_lost_gap_shows_as_a_chain_break_and_is_counted_lost(store: Store) -> None:
    chain = Chain()
    one = chain.next()
    chain.next()
    chain.next()
    four = chain.next(prev_hash="e" * 64)  # the journal restarted: the chain does too
    store.store_events(pairs(one, four), T0)
    lost = EventGap(gap="lost", gateway_id=GW, first_seq=2, last_seq=3, reason="journal")
    assert store.store_gaps([lost], T0).acks == {GW: 4}
    assert chain_flags(store)[4] == 0
    assert list_gateways(store)[0]["chain_breaks"] == 1
    assert report(store)["events_lost"] == 2


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_later_alert_supersedes_an_earlier_one_in_either_arrival_order(
    store: Store, newest_first: bool
) -> None:
    chain = Chain()
    late = chain.next(EventType.VISIT_LATE, visit_id="v1")
    missed = chain.next(EventType.VISIT_MISSED, visit_id="v1", data={"supersedes": "visit_late"})
    for event in ([missed, late] if newest_first else [late, missed]):
        store.store_events(pairs(event), T0)
    by_type = {a["type"]: a["status"] for a in list_alerts(store, GW)}
    assert by_type == {"visit_late": "superseded", "visit_missed": "open"}


def test_attendances_pair_arrival_and_departure(store: Store) -> None:
    document = PlanDocument.parse({
        "gateway": GW, "service_users": ["su-1"],
        "visits": [{"id": "v1", "service_user": "su-1", "start": "2026-03-02T08:00",
                    "duration_min": 30}],
    })
    store.save_plan(document, T0, "coordinator")
    chain = Chain()
    store.store_events(pairs(
        chain.next(EventType.ARRIVAL, visit_id="v1", carer_id="c1",
                   data={"punctuality": "on_time"}),
        chain.next(EventType.DEPARTURE, visit_id="v1", carer_id="c1"),
    ), T0)
    [visit] = list_visits(store)
    assert visit["status"] == "completed"
    assert visit["punctuality"] == "on_time"
    assert [a["carer"] for a in visit["attendances"]] == ["c1"]


def test_alert_work_is_audited_and_a_superseded_alert_cannot_be_worked(store: Store) -> None:
    chain = Chain()
    store.store_events(pairs(
        chain.next(EventType.VISIT_LATE, visit_id="v1"),
        chain.next(EventType.VISIT_MISSED, visit_id="v1", data={"supersedes": "visit_late"}),
    ), T0)
    late, missed = list_alerts(store, GW)
    assert store.update_alert(missed["id"], "acknowledged", None, T0, "mona") == "open"
    with pytest.raises(Superseded):
        store.update_alert(late["id"], "resolved", "done", T0, "mona")
    with pytest.raises(NotFound):
        store.update_alert(999_999, "resolved", None, T0, "mona")
    with store.db.read() as conn:
        trail = conn.execute(sa.select(audit.c.who, audit.c.action, audit.c.target)).all()
    assert [tuple(r) for r in trail] == [("mona", "alert.acknowledged", f"alert:{missed['id']}")]


def test_gateways_scoping_limits_every_read_and_write(store: Store) -> None:
    for gateway_id in (GW, OTHER):
        chain = Chain(gateway_id)
        store.store_events(pairs(chain.next(EventType.UNKNOWN_TAG)), T0)
        store.save_plan(PlanDocument.parse({"gateway": gateway_id, "service_users": []}),
                        T0, "coordinator")
    mine = {GW}
    assert {a["gateway"] for a in list_alerts(store, gateways=mine)} == {GW}
    assert [g["id"] for g in list_gateways(store, gateways=mine)] == [GW]
    assert {e["gateway_id"] for e in list_events(store, gateways=mine)} == {GW}
    assert list_events(store, OTHER, gateways=mine) == []
    assert len(report(store, gateways=mine)["alerts"]) == 1
    assert list_visits(store, gateways=set()) == []
    assert store.current_plan(OTHER, gateways=mine) is None
    assert store.current_plan(GW, gateways=mine) is not None
    with pytest.raises(OutOfScope):
        store.save_plan(PlanDocument.parse({"gateway": OTHER, "service_users": []}), T0,
                        "coordinator", gateways=mine)
    other_alert = list_alerts(store, OTHER)[0]["id"]
    with pytest.raises(NotFound):
        store.update_alert(other_alert, "resolved", None, T0, "mona", gateways=mine)
    assert list_alerts(store, OTHER)[0]["status"] == "open"


def test_reads_do_not_wait_for_an_open_ingest_transaction(store: Store) -> None:
    """HTTP handlers take their own pooled connection: a read completes while a write
    transaction (as ingest holds during a batch) is still open."""
    chain = Chain()
    store.store_events(pairs(chain.next()), T0)
    holding = threading.Event()
    release = threading.Event()

    def ingest_batch() -> None:
        with store.db.write() as conn:
            conn.execute(sa.update(events).values(received_at="2026-03-02T09:00:00Z"))
            holding.set()
            release.wait(30)

    writer = threading.Thread(target=ingest_batch)
    writer.start()
    try:
        assert holding.wait(10)
        assert [e["seq"] for e in list_events(store, GW)] == [1]
        assert store.position(GW) == (1, 1)
    finally:
        release.set()
        writer.join(30)


def test_a_gap_of_a_million_seqs_is_one_row_and_the_ack_jumps_it(store: Store) -> None:
    """A tombstone's length costs nothing: one row, however many seqs it covers (a hostile
    or a renumbering gateway can send one covering a million)."""
    chain = Chain()
    one = chain.next()
    store.store_events(pairs(one), T0)
    lost = EventGap(gap="lost", gateway_id=GW, first_seq=2, last_seq=1_000_001,
                    reason="journal")
    result = store.store_gaps([lost], T0)
    assert (result.stored, result.acks) == (1_000_000, {GW: 1_000_001})
    with store.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(event_gaps)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 1
    assert list_gateways(store)[0]["events_gone"] == 1_000_000
    assert report(store)["events_lost"] == 1_000_000
    assert store.position(GW) == (1_000_001, 1_000_001)


def test_a_folded_gap_adds_only_its_new_seqs_and_counts_stay_exact(store: Store) -> None:
    """The gateway folds its shed reports (2..4, later 2..8): central keeps the gaps disjoint,
    so every seq is counted once, and a real event that made it counts as delivered."""
    chain = Chain()
    events_ = [chain.next() for _ in range(9)]
    store.store_events(pairs(events_[0], events_[5]), T0)  # seqs 1 and 6 arrived
    first = EventGap(gap="dropped", gateway_id=GW, first_seq=2, last_seq=4,
                     prev_hash=events_[0].hash, hash=events_[3].hash, types={"battery": 3})
    folded = EventGap(gap="dropped", gateway_id=GW, first_seq=2, last_seq=8,
                      prev_hash=events_[0].hash, hash=events_[7].hash, types={"battery": 7})
    assert store.store_gaps([first], T0).stored == 3
    again = store.store_gaps([folded, folded], T0)
    assert (again.stored, again.acks) == (3, {GW: 8})  # 5, 7, 8 new; 6 is a real event
    gateway = list_gateways(store)[0]
    assert (gateway["events_dropped"], gateway["events_stored"]) == (6, 8)
    listed = list_events(store, GW)
    assert [(e["seq"], e["type"]) for e in listed] == [
        (1, "battery"), (2, "dropped"), (3, "dropped"), (4, "dropped"), (5, "dropped"),
        (6, "battery"), (7, "dropped"), (8, "dropped")]
    assert listed[1]["chain_ok"] == 1  # the gap's first seq links to seq 1
    # seq 9 follows the gap's last seq: its link is checked against the gap's end hash
    assert store.store_events(pairs(events_[8]), T0).acks == {GW: 9}
    assert chain_flags(store)[9] == 1
    assert report(store)["events_lost"] == 0
