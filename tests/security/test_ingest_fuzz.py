"""Hypothesis fuzz of central's ingest: generated batches of valid, invalid and poisoned
messages go through :meth:`central.ingest.session.Ingest._handle` (what the MQTT worker runs
for every batch) into a real SQLite store. No exception escapes; every valid event is stored
exactly once; nothing invalid is stored; everything refused is kept in ``rejected_messages``.

The ingest is not connected to a broker here (its acks and publishes go nowhere); the broker
side is covered by ``test_ingest_hostile.py``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.db.engine import Database
from central.db.migrate import upgrade
from central.db.tables import events, rejected_messages
from central.ingest.session import Ingest, _Received
from central.settings import CentralSettings
from central.store import Store
from homecall.clock import ManualClock
from homecall.wire import GENESIS_HASH, Channel, EventType, chain_hash, topic

NOW = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
_GATEWAYS = itertools.count()


@pytest.fixture(scope="module")
def ingest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "central.db"
    db = Database(path)
    upgrade(db)
    central = Ingest(CentralSettings(database=f"sqlite:///{path}"), Store(db),
                     ManualClock(NOW))
    yield central
    db.dispose()


def _chain(gateway_id: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, prev = [], GENESIS_HASH
    for seq, extra in enumerate(bodies, start=1):
        body = {
            "v": 1, "id": f"{gateway_id}-{seq}", "gateway_id": gateway_id, "seq": seq,
            "type": extra["type"], "time": extra["time"], "mono": float(seq),
            "boot_id": "boot-1", "clock_ok": extra["clock_ok"], "severity": None,
            "visit_id": None, "service_user_id": None, "carer_id": None,
            "data": extra["data"], "prev_hash": prev,
        }
        prev = chain_hash(prev, body)
        out.append({**body, "hash": prev})
    return out


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60),
                          st.text(max_size=20))

def _unset_clock(body: dict[str, Any]) -> dict[str, Any]:
    # A gateway whose clock was never set sends 1970 with clock_ok false (plausible as such).
    if body["time"].startswith("1970"):
        return {**body, "clock_ok": False}
    return body


_bodies = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from([EventType.DOOR.value, EventType.BATTERY.value,
                             EventType.BUTTON.value]),
    "time": st.sampled_from(["2026-03-29T00:30:00Z", "2026-03-28T23:00:00+01:00",
                             "1970-01-01T00:00:00Z"]),
    "clock_ok": st.booleans(),
    "data": st.dictionaries(st.text(min_size=1, max_size=8), _json_scalars, max_size=4),
}).map(_unset_clock), min_size=1, max_size=8)


def _poison(valid: dict[str, Any]) -> st.SearchStrategy[tuple[bytes, bool]]:
    """A message that must be refused: (payload, retained)."""
    def mutated(field: str, value: Any) -> bytes:
        return json.dumps({**valid, field: value}).encode()

    good_time = valid["time"] if not valid["clock_ok"] else "2026-03-29T00:30:00Z"
    return st.one_of(
        st.binary(min_size=1, max_size=200).map(lambda b: (b, False)),
        st.sampled_from([
            (mutated("seq", 2**63), False), (mutated("seq", 0), False),
            (mutated("seq", -1), False), (mutated("time", "9999-12-31T23:59:59-14:00"), False),
            (mutated("time", 1e300), False), (mutated("gateway_id", "gw-someone-else"), False),
            (mutated("data", {"x": "tampered"}), False),  # hash no longer matches
            (mutated("hash", "0" * 64), False), (mutated("mono", "NaN"), False),
            (b'{"gap":"lost","gateway_id":"' + valid["gateway_id"].encode()
             + b'","first_seq":1,"last_seq":2000000}', False),
            (json.dumps({**valid, "time": good_time}).encode(), True),  # retained
        ]),
        st.text(min_size=1, max_size=300).map(lambda s: (s.encode(), False)),
        # clock_ok with a time a century ahead of central's clock: implausible
        st.just((json.dumps(_chain(valid["gateway_id"], [{
            "type": EventType.DOOR.value, "time": "2126-03-29T00:30:00Z", "clock_ok": True,
            "data": {}}])[0]).encode(), False)),
    )


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data(), bodies=_bodies)
def test_generated_batches_never_escape_and_store_each_valid_event_once(
    ingest: Ingest, data: st.DataObject, bodies: list[dict[str, Any]]
) -> None:
    gateway_id = f"gw-fuzz-{next(_GATEWAYS)}"
    valid = _chain(gateway_id, bodies)
    events_topic = topic(gateway_id, Channel.EVENTS)
    messages = [(json.dumps(v).encode(), False) for v in valid]
    messages += [(json.dumps(v).encode(), False)  # resent: stored once
                 for v in data.draw(st.lists(st.sampled_from(valid), max_size=4))]
    poison = [data.draw(_poison(data.draw(st.sampled_from(valid))))
              for _ in range(data.draw(st.integers(0, 6)))]
    order = data.draw(st.permutations(messages + poison))
    cut = data.draw(st.integers(1, max(1, len(order))))
    mids = itertools.count(1)
    before = _count(ingest, rejected_messages)
    for batch in (order[:cut], order[cut:]):
        ingest._handle([_Received(events_topic, payload, next(mids), 1, retained)
                        for payload, retained in batch])
    with ingest.store.db.read() as conn:
        stored = conn.execute(
            sa.select(events.c.seq, events.c.hash).where(events.c.gateway_id == gateway_id)
            .order_by(events.c.seq)).all()
    assert [(s.seq, s.hash) for s in stored] == [(v["seq"], v["hash"]) for v in valid]
    assert _count(ingest, rejected_messages) - before == len(poison)


def _count(ingest: Ingest, table: sa.Table) -> int:
    with ingest.store.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
