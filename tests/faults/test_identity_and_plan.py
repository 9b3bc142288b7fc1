"""A gateway with the wrong broker identity keeps its events (MQTT 5: a login whose client id
is not its own, or a publish the ACL denies, comes back 0x87 and the events stay in the
journal; a refused login publishes nothing), and
plan sync: central's signed plan is applied, a forged or unsigned one is rejected with a
``plan_rejected`` event that reaches central while the old plan stays in force, also across
a restart with central unreachable."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt

from homecall.carer_token import generate_signing_key
from homecall.plan import PlanDocument, sign_plan
from homecall.wire import Channel, topic
from orchestration.broker import CENTRAL_USER
from tests.conftest import wait_for
from tests.faults.harness import FaultRig, unknown_tag


def backlog_then(rig: FaultRig, tags: range) -> int:
    """Cut the network, tap ``tags`` (alerts), stop the gateway; returns journal rows."""
    assert rig.stack.relay is not None
    rig.stack.relay.cut()
    for i in tags:
        rig.tap(unknown_tag(i))
    wait_for(lambda: rig.journal_rows() >= len(tags), timeout=20, message="taps journalled")
    rig.stack.stop_gateway(rig.gateway_id)
    rig.stack.relay.restore()
    return rig.journal_rows()


def test_wrong_identity_loses_nothing(tmp_path: Path, central_db: str | None) -> None:
    gw = "gw-ident-a"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        rig.stack.broker.add_user("gw-ident-b")
        other_secret = rig.stack.broker.credentials_file("gw-ident-b")
        bad_password = tmp_path / "bad.secret"
        bad_password.write_text("not-the-password")
        process = rig.stack.gateways[gw]
        normal_args = list(process.extra_args)
        rows = backlog_then(rig, range(0, 8))

        # 1. Another gateway's valid identity: the broker refuses the login (0x87 Not
        #    authorized: the client id gw-gw-ident-a is not gw-ident-b's), or, under an ACL
        #    alone, every publish to our topics (PUBACK 0x87).
        process.extra_args = [*normal_args, "--mqtt-user", "gw-ident-b",
                              "--mqtt-password-file", str(other_secret)]
        rig.stack.start_gateway(gw)
        wait_for(lambda: "0x87" in rig.log_tail("gateway", 200_000)
                 or "connect refused: Not authorized" in rig.log_tail("gateway", 200_000),
                 timeout=30, message="the broker to refuse the login or a publish with 0x87")
        rig.stack.stop_gateway(gw)
        assert rig.journal_rows() >= rows  # refused events are still in the journal

        # 2. A wrong password: the login is refused, nothing is published.
        process.extra_args = [*normal_args, "--mqtt-password-file", str(bad_password)]
        rig.stack.start_gateway(gw)
        wait_for(lambda: "connect refused" in rig.log_tail("gateway", 200_000)
                 or "Not authorized" in rig.log_tail("gateway", 200_000), timeout=30,
                 message="the broker to refuse the login")
        rig.stack.stop_gateway(gw)
        assert rig.journal_rows() >= rows

        # 3. The right identity again: everything arrives, once.
        process.extra_args = normal_args
        rig.stack.start_gateway(gw)
        rig.drain()
        events = rig.assert_nothing_lost_nothing_twice()
        assert sum(e["type"] == "unknown_tag" for e in events) == 8


def publish_retained_plan(rig: FaultRig, payload: bytes) -> None:
    broker = rig.stack.broker
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-forger",
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(CENTRAL_USER, broker.passwords[CENTRAL_USER])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topic(rig.gateway_id, Channel.PLAN), payload, qos=1,
                   retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def plan_version(rig: FaultRig) -> int | None:
    status = (rig.stack.gateway_view(rig.gateway_id) or {}).get("status") or {}
    return status.get("plan_version")


def test_forged_and_unsigned_plans_rejected_old_plan_stays(tmp_path: Path,
                                                            central_db: str | None) -> None:
    gw = "gw-plan-sig"
    with FaultRig(tmp_path, gw, central_db=central_db) as rig:
        wait_for(lambda: plan_version(rig) == 1, timeout=30, message="signed plan v1 applied")
        # A plan v2 signed with some other key (a forger with broker access), then unsigned.
        retained = rig.stack.http.get(f"/api/plans/{gw}").json()["document"]
        forged = PlanDocument.parse(retained).for_gateway(2, "forged-salt-123")
        other_key, _ = generate_signing_key()
        publish_retained_plan(rig, sign_plan(forged, other_key).to_bytes())
        wait_for(lambda: any(e["type"] == "plan_rejected" for e in rig.central_events()),
                 timeout=30, message="plan_rejected at central")
        unsigned = PlanDocument.parse(retained).for_gateway(3, "forged-salt-123")
        publish_retained_plan(rig, unsigned.to_bytes())
        wait_for(lambda: sum(e["type"] == "plan_rejected" for e in rig.central_events()) == 2,
                 timeout=30, message="second plan_rejected at central")
        assert plan_version(rig) == 1
        reasons = [json.loads(e["data"])["reason"] for e in rig.central_events()
                   if e["type"] == "plan_rejected"]
        assert "does not verify" in reasons[0] and "not signed" in reasons[1]

        # Central unreachable and the gateway restarted: it runs on the last good plan.
        rig.stack.kill_central()
        boot = rig.boot_id()
        rig.stack.stop_gateway(gw)
        rig.stack.start_gateway(gw)
        wait_for(lambda: "running (journal" in rig.log_tail("gateway", 20_000).split(
            "Scheduler has been shut down")[-1], timeout=30, message="gateway restarted")
        rig.stack.start_central()
        rig.wait_online(previous_boot=boot)
        wait_for(lambda: plan_version(rig) == 1, timeout=30, message="plan v1 still in force")
        rig.drain()
        rig.assert_nothing_lost_nothing_twice()
