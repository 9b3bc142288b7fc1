"""Faults around the gateway: central killed (-9) in the middle of ingesting a backlog, and
Mosquitto restarted with its persistence deleted (sessions, queued messages and retained
plan/status gone). Central ends with every journalled event exactly once either way."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from homecall.plan import GatewayPlan
from homecall.wire import Channel, topic
from orchestration.broker import CENTRAL_USER
from tests.conftest import wait_for
from tests.faults.harness import FaultRig


def test_central_killed_during_ingest_of_a_backlog(tmp_path: Path, central_db: str | None
                                                    ) -> None:
    gw = "gw-central-kill"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        assert rig.stack.relay is not None
        rig.stack.relay.cut()
        load = rig.load(rate_hz=200, tap_every=25)
        wait_for(lambda: int(rig.journal_meta().get("last_seq", "0")) >= 1500, timeout=60,
                 message="a backlog of 1500 events")
        load.stop()
        before = rig.contiguous()
        rig.stack.relay.restore()
        # Kill central while the replay is under way (stored some, not all).
        wait_for(lambda: rig.contiguous() > before + 50, timeout=60, message="replay to start")
        rig.stack.kill_central()
        assert rig.contiguous() < int(rig.journal_meta()["last_seq"])
        rig.stack.start_central()
        more = rig.load(rate_hz=50, tap_every=10)
        time.sleep(0.5)
        more.stop()
        rig.drain()
        rig.assert_nothing_lost_nothing_twice()


def retained(port: int, password: str, name: str, timeout: float = 10.0) -> bytes | None:
    """The retained message on ``name`` as a fresh subscriber sees it (None if none)."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-retained",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(CENTRAL_USER, password)

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
            done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe(name, qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(timeout)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


def test_broker_restarted_with_persistence_deleted(tmp_path: Path, central_db: str | None
                                                   ) -> None:
    gw = "gw-broker-wipe"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        broker = rig.stack.broker
        load = rig.load(rate_hz=60, tap_every=8)
        try:
            wait_for(lambda: rig.contiguous() > 100, timeout=60, message="traffic flowing")
            broker.stop()
            time.sleep(1.0)  # events keep being journalled with no broker
            broker.restart(wipe_persistence=True)
            assert not list(broker.workdir.glob("*.db"))
            wait_for(lambda: rig.contiguous() > int(rig.journal_meta()["last_seq"]) - 50,
                     timeout=60, message="delivery to resume after the wipe")
        finally:
            load.stop()
        rig.drain()
        rig.assert_nothing_lost_nothing_twice()
        # Central put the signed plan back on the wiped broker, retained.
        plan = retained(broker.port, broker.passwords[CENTRAL_USER], topic(gw, Channel.PLAN))
        assert plan is not None
        assert GatewayPlan.from_bytes(plan).signature
