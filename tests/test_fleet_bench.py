"""`homecall bench fleet`: its gateways speak the wire contract central accepts, and a short
run against a real Mosquitto and a real central ingests every event exactly once."""

from __future__ import annotations

import argparse
import itertools
import json
import random
from datetime import UTC, datetime
from pathlib import Path

from homecall.wire import GENESIS_HASH, EventEnvelope
from orchestration.benchmarks import fleet
from orchestration.benchmarks.fleet.gateway import SimGateway


def test_generated_events_form_a_hash_chain_central_verifies() -> None:
    gateway = SimGateway("fleet-1", "secret")
    rng = random.Random(3)
    envelopes = [EventEnvelope.from_bytes(gateway.next_event(rng, datetime.now(UTC))[1])
                 for _ in range(20)]
    assert [e.seq for e in envelopes] == list(range(1, 21))
    assert envelopes[0].prev_hash == GENESIS_HASH
    assert all(e.verify_hash() for e in envelopes)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(envelopes))
    assert {e.gateway_id for e in envelopes} == {"fleet-1"}


def test_short_fleet_run_is_ingested_exactly_once(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    fleet.add_arguments(parser)
    args = parser.parse_args([
        "--gateways", "6", "--duration", "3", "--heartbeat", "1", "--event-interval", "0.5",
        "--stop-sample", "2", "--stop-wait", "8", "--backlog", "15",
        "--workdir", str(tmp_path),
    ])
    assert fleet.run(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["connect"]["connected"] == 6
    assert results["connect"]["central_first_ack"] == 6  # central answered every birth
    assert results["steady"]["events_published"] > 0
    # the stopped gateways' last wills reached the broker's subscribers and central's view
    assert results["stop"]["will_published"] == 2
    assert results["stop"]["central_shows_offline"] == 2
    assert len(results["stop"]["stopped_at_unix"]) == 2
    flood = results["flood"]
    assert flood["gateways"] == 4 and flood["events"] == 60 and flood["all_acked"]
    assert results["central_report"] == {"events_lost": 0, "events_duplicated": 0}
