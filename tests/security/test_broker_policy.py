"""A stolen gateway, driven with its own valid login, against the real Mosquitto and policy.

Each test plays one attack from a hostile gateway (``gw-evil``) and asserts both that the
broker refuses it (the MQTT 5 reason code the attacker gets back) and that a well-behaved
gateway (``gw-good``) keeps delivering every event to the legitimate subscriber, central's
identity, in the same run (the delivered count). Absence of messages at the attacker is
checked with a marker sent after the traffic on a topic the attacker may read: MQTT keeps
the order on one connection, so once the marker is in, nothing earlier is still coming.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from homecall.wire import (
    ALL_STATUS_SUBSCRIPTION,
    MAX_GATEWAY_MESSAGE_BYTES,
    MAX_PLAN_MESSAGE_BYTES,
    SHARED_EVENTS_SUBSCRIPTION,
    AckMessage,
    Channel,
    StatusMessage,
    topic,
)
from orchestration.broker import (
    CENTRAL_USER,
    GATEWAY_PUBLISH_BURST,
    GATEWAY_PUBLISH_RATE_PER_S,
    MAX_PACKET_BYTES,
    MosquittoBroker,
)
from tests.conftest import wait_for
from tests.security.probe import (
    GRANTED_QOS1,
    NOT_AUTHORIZED,
    PACKET_TOO_LARGE,
    SUCCESS,
    UNSPECIFIED_ERROR,
    Probe,
    deliver_and_count,
    event_payloads,
)

GOOD = "gw-good"
EVIL = "gw-evil"
NO_MATCHING_SUBSCRIBERS = 0x10
CENTRAL_CLIENT_ID = "central-1"


@pytest.fixture
def rig(broker: MosquittoBroker) -> Iterator[tuple[Probe, Probe, Probe]]:
    """(central, good gateway, attacker), all connected; central takes events as central does."""
    broker.add_user(GOOD)
    broker.add_user(EVIL)
    central = Probe(broker, CENTRAL_USER, client_id=CENTRAL_CLIENT_ID)
    good = Probe(broker, GOOD)
    evil = Probe(broker, EVIL)
    probes = [central, good, evil]
    try:
        assert central.connect(clean_start=False, session_expiry_s=3600) == SUCCESS
        assert central.subscribe(SHARED_EVENTS_SUBSCRIPTION) == GRANTED_QOS1
        assert central.subscribe(ALL_STATUS_SUBSCRIPTION) == GRANTED_QOS1
        for gateway in (good, evil):
            assert gateway.connect(clean_start=False, session_expiry_s=3600) == SUCCESS
            for channel in (Channel.PLAN, Channel.CMD, Channel.ACK):
                assert gateway.subscribe(topic(gateway.username, channel)) == GRANTED_QOS1
        yield central, good, evil
    finally:
        for probe in probes:
            probe.close()


def assert_nothing_received(evil: Probe, central: Probe) -> None:
    """Fail if the attacker got anything but its own ack marker (sent now, waited for)."""
    marker = AckMessage(seq=0).to_bytes()
    own_ack = topic(evil.username, Channel.ACK)
    central.publish_ok(own_ack, marker)
    wait_for(lambda: evil.received(own_ack), message="the attacker's own ack marker")
    assert [m.topic for m in evil.messages] == [own_ack]


def test_shared_subscription_cannot_divert_events(rig: tuple[Probe, Probe, Probe]) -> None:
    central, good, evil = rig
    # Joining central's share group would deal every gateway's events round-robin to the
    # attacker; any share group, or the events of all gateways, is refused.
    for topic_filter in (
        SHARED_EVENTS_SUBSCRIPTION,
        f"$share/central/{topic(GOOD, Channel.EVENTS)}",
        f"$share/central/{topic(EVIL, Channel.PLAN)}",
        "$share/evil/homecall/v1/gw/+/events",
        "$share/central/#",
    ):
        assert evil.subscribe(topic_filter) == NOT_AUTHORIZED, topic_filter

    assert deliver_and_count(good, central, count=40) == 40
    assert_nothing_received(evil, central)
    assert evil.disconnects == [] and central.disconnects == []


@pytest.mark.parametrize("topic_filter", [
    topic(GOOD, Channel.PLAN),
    topic(GOOD, Channel.CMD),
    topic(GOOD, Channel.ACK),
    topic(GOOD, Channel.EVENTS),
    topic(GOOD, Channel.STATUS),
    topic(EVIL, Channel.EVENTS),
    "homecall/v1/gw/+/plan",
    "homecall/v1/gw/+/ack",
    f"homecall/v1/gw/{EVIL}/#",
    "homecall/#",
    "#",
    "$SYS/#",
])
def test_gateway_cannot_subscribe_beyond_its_plan_cmd_and_ack(
    rig: tuple[Probe, Probe, Probe], topic_filter: str
) -> None:
    central, good, evil = rig
    assert evil.subscribe(topic_filter) == NOT_AUTHORIZED

    # Central's ack, plan and command to the good gateway reach it, and only it.
    for channel, payload in ((Channel.ACK, AckMessage(seq=7).to_bytes()),
                             (Channel.CMD, b'{"v":1,"command":"identify","args":{}}'),
                             (Channel.PLAN, b'{"version":1}')):
        central.publish_ok(topic(GOOD, channel), payload)
        wait_for(lambda ch=channel, p=payload: good.received(topic(GOOD, ch)) == [p],
                 message=f"the good gateway's {channel.value}")
    assert deliver_and_count(good, central) == 20
    assert_nothing_received(evil, central)


def test_gateway_cannot_publish_as_another_gateway(rig: tuple[Probe, Probe, Probe]) -> None:
    central, good, evil = rig
    forged = event_payloads(GOOD, 1, first_seq=1)[0]
    assert evil.publish(topic(GOOD, Channel.EVENTS), forged) == NOT_AUTHORIZED
    offline = StatusMessage(gateway_id=GOOD, state="offline").to_bytes()
    assert evil.publish(topic(GOOD, Channel.STATUS), offline, retain=True) == NOT_AUTHORIZED
    assert evil.publish(topic(GOOD, Channel.ACK), b"{}") == NOT_AUTHORIZED

    # The good gateway's own seq 1 is the one central gets, once.
    assert deliver_and_count(good, central) == 20
    assert central.received(topic(GOOD, Channel.EVENTS)).count(forged) == 1
    assert central.received(topic(GOOD, Channel.STATUS)) == []


def test_client_id_takeover_of_central_is_refused(broker: MosquittoBroker,
                                                  rig: tuple[Probe, Probe, Probe]) -> None:
    central, good, _ = rig
    for client_id in (CENTRAL_CLIENT_ID, CENTRAL_USER):
        thief = Probe(broker, EVIL, client_id=client_id)
        assert thief.connect(clean_start=True) == NOT_AUTHORIZED
    assert central.disconnects == []
    assert deliver_and_count(good, central, count=20) == 20

    # Central away with its session kept: a clean-start takeover must not wipe that session.
    central.close()
    queued = event_payloads(GOOD, 10, first_seq=21)
    for payload in queued:
        good.publish_ok(topic(GOOD, Channel.EVENTS), payload)
    thief = Probe(broker, EVIL, client_id=CENTRAL_CLIENT_ID)
    assert thief.connect(clean_start=True) == NOT_AUTHORIZED

    back = Probe(broker, CENTRAL_USER, client_id=CENTRAL_CLIENT_ID)
    try:
        assert back.connect(clean_start=False, session_expiry_s=3600) == SUCCESS
        assert back.session_present == [True]
        wait_for(lambda: set(queued) <= set(back.received(topic(GOOD, Channel.EVENTS))),
                 message="the events queued in central's session")
        assert deliver_and_count(good, back, count=20, first_seq=31) == 20
    finally:
        back.close()


def test_client_id_takeover_of_another_gateway_is_refused(
    broker: MosquittoBroker, rig: tuple[Probe, Probe, Probe]
) -> None:
    central, good, evil = rig
    for client_id in (good.client_id, GOOD):
        thief = Probe(broker, EVIL, client_id=client_id)
        assert thief.connect(clean_start=True) == NOT_AUTHORIZED
    assert good.disconnects == []
    assert evil.disconnects == []  # the attacker's own session is untouched too
    assert deliver_and_count(good, central) == 20

    # The good gateway offline with an ack queued in its session: a clean-start takeover
    # would wipe it; refused, the ack is still there when the gateway comes back.
    good.close()
    ack = AckMessage(seq=20).to_bytes()
    central.publish_ok(topic(GOOD, Channel.ACK), ack)
    thief = Probe(broker, EVIL, client_id=good.client_id)
    assert thief.connect(clean_start=True) == NOT_AUTHORIZED

    back = Probe(broker, GOOD)
    try:
        assert back.connect(clean_start=False, session_expiry_s=3600) == SUCCESS
        assert back.session_present == [True]
        wait_for(lambda: back.received(topic(GOOD, Channel.ACK)) == [ack],
                 message="the ack queued in the good gateway's session")
        assert deliver_and_count(back, central, count=20, first_seq=21) == 20
    finally:
        back.close()


def test_oversized_messages_are_refused(broker: MosquittoBroker,
                                        rig: tuple[Probe, Probe, Probe]) -> None:
    central, good, evil = rig
    events = topic(EVIL, Channel.EVENTS)
    # The largest message a gateway may send goes through (it is not a valid event, which
    # is central's business; the broker only bounds the size).
    largest = b"x" * MAX_GATEWAY_MESSAGE_BYTES
    assert evil.publish(events, largest) == SUCCESS
    wait_for(lambda: central.received(events) == [largest], message="the largest message")

    # One byte more is refused with the connection kept; a 10 MB message closes it (0x95).
    assert evil.publish(events, largest + b"x") == NOT_AUTHORIZED
    assert evil.publish(topic(EVIL, Channel.STATUS), largest + b"x",
                        retain=True) == NOT_AUTHORIZED
    assert evil.disconnects == []
    evil.client.publish(events, b"x" * (10 * 1024 * 1024), qos=1)
    wait_for(lambda: evil.disconnects, message="the broker to drop the 10 MB publisher")
    # Mosquitto sends DISCONNECT 0x95 and closes at once; paho, still writing the 10 MB, may
    # see only the closed socket (0x80), so the reason is read from the broker's log.
    assert evil.disconnects[0] in (PACKET_TOO_LARGE, UNSPECIFIED_ERROR)
    assert f"Client {evil.client_id} disconnected due to oversize packet" in (
        broker.workdir / "mosquitto.log").read_text()

    assert deliver_and_count(good, central) == 20
    assert central.received(events) == [largest]

    # Central's largest message (a signed plan) still fits under the packet limit.
    plan = b"p" * MAX_PLAN_MESSAGE_BYTES
    central.publish_ok(topic(GOOD, Channel.PLAN), plan, retain=True)
    wait_for(lambda: good.received(topic(GOOD, Channel.PLAN)) == [plan],
             message="the largest plan at the gateway")
    assert MAX_PLAN_MESSAGE_BYTES < MAX_PACKET_BYTES < 10 * 1024 * 1024


def test_retained_events_are_refused(broker: MosquittoBroker,
                                     rig: tuple[Probe, Probe, Probe]) -> None:
    central, good, evil = rig
    poison = event_payloads(EVIL, 1)[0]
    assert evil.publish(topic(EVIL, Channel.EVENTS), poison, retain=True) == NOT_AUTHORIZED
    assert good.publish(topic(GOOD, Channel.EVENTS), event_payloads(GOOD, 1)[0],
                        retain=True) == NOT_AUTHORIZED

    # The status heartbeat stays retained by design (one per gateway, bounded in size,
    # central treats its contents as a claim), so central learns a gateway's state at once.
    status = StatusMessage(gateway_id=GOOD, state="online", last_seq=0).to_bytes()
    good.publish_ok(topic(GOOD, Channel.STATUS), status, retain=True)

    # A newcomer on every gateway's events (central after a restart) gets no retained event;
    # the marker published after it subscribed proves nothing retained is still on its way.
    newcomer = Probe(broker, CENTRAL_USER, client_id="central-2")
    try:
        assert newcomer.connect() == SUCCESS
        assert newcomer.subscribe("homecall/v1/gw/+/events") == GRANTED_QOS1
        assert newcomer.subscribe(topic(GOOD, Channel.STATUS)) == GRANTED_QOS1
        marker = event_payloads(EVIL, 1, first_seq=2)[0]
        evil.publish_ok(topic(EVIL, Channel.EVENTS), marker)
        wait_for(lambda: newcomer.received(topic(EVIL, Channel.EVENTS)),
                 message="the marker event")
        assert newcomer.received(topic(EVIL, Channel.EVENTS)) == [marker]
        assert [m.retain for m in newcomer.messages if m.topic.endswith("/events")] == [False]
        assert newcomer.received(topic(GOOD, Channel.STATUS)) == [status]
    finally:
        newcomer.close()

    assert deliver_and_count(good, central) == 20


def test_a_flooding_login_is_held_to_its_publish_rate(broker: MosquittoBroker,
                                                      rig: tuple[Probe, Probe, Probe]) -> None:
    """A stolen login publishing as fast as it can gets its burst and then its rate, no more
    (PUBACK 0x87 for the rest); central receives exactly what was accepted, a well-behaved
    gateway's events flow beside it, and the attacker's allowance refills with time."""
    central, good, evil = rig
    events = topic(EVIL, Channel.EVENTS)
    flood = [b"flood %d" % i for i in range(3 * GATEWAY_PUBLISH_BURST)]
    started = time.monotonic()
    mids = [evil.client.publish(events, payload, qos=1).mid for payload in flood]
    codes = wait_for(lambda: [evil.puback(mid) for mid in mids]
                     if all(evil.puback(mid) is not None for mid in mids) else None,
                     timeout=30, message="a PUBACK for every flood message")
    elapsed = time.monotonic() - started
    accepted = [payload for payload, code in zip(flood, codes, strict=True) if code == SUCCESS]
    assert set(codes) == {SUCCESS, NOT_AUTHORIZED}
    assert GATEWAY_PUBLISH_BURST <= len(accepted) <= (
        GATEWAY_PUBLISH_BURST + GATEWAY_PUBLISH_RATE_PER_S * elapsed + 1)
    wait_for(lambda: len(central.received(events)) >= len(accepted),
             message="every accepted flood message at central")
    assert central.received(events) == accepted
    assert "refusing PUBLISH by gw-evil: over its rate" in (
        broker.workdir / "mosquitto.log").read_text()

    assert deliver_and_count(good, central) == 20  # another login's allowance is its own

    # the allowance refills with time: a later publish is accepted again (refused tries do
    # not spend it)
    wait_for(lambda: evil.publish(events, b"refilled") == SUCCESS, timeout=10,
             message="the attacker's allowance to refill")


def test_a_gateway_that_spent_its_burst_can_still_reconnect_and_say_it_is_offline(
        tmp_path: Path) -> None:
    """A login over its rate can still connect with its last will, and one retained status
    (what a last will is) is spared over the limit once in a while, so central hears such a
    gateway go offline; a stream of them is not spared. (A slow rate, one token per 5 s, so
    none refills during the test.)"""
    with MosquittoBroker(tmp_path / "broker", publish_rate_per_s=0.2,
                         publish_burst=20) as broker:
        broker.add_user(EVIL)
        status = topic(EVIL, Channel.STATUS)
        offline = StatusMessage(gateway_id=EVIL, state="offline").to_bytes()

        def with_will() -> Probe:
            probe = Probe(broker, EVIL)
            probe.client.will_set(status, offline, qos=1, retain=True)
            return probe

        first = with_will()
        assert first.connect() == SUCCESS
        events = topic(EVIL, Channel.EVENTS)
        # (nobody subscribes here: an accepted publish is 0x10, "no matching subscribers")
        codes = [first.publish(events, b"%d" % i) for i in range(30)]
        assert codes == [NO_MATCHING_SUBSCRIBERS] * 20 + [NOT_AUTHORIZED] * 10
        first.close()
        second = with_will()
        try:
            assert second.connect() == SUCCESS
            assert second.publish(status, offline, retain=True) < 0x80  # spared
            assert second.publish(status, offline, retain=True) == NOT_AUTHORIZED
            assert second.publish(events, b"more") == NOT_AUTHORIZED
        finally:
            second.close()
