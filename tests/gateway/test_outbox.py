"""The outbox's delivery logic against a real Mosquitto, with the test playing both the
gateway's core thread (handing paho's messages to :meth:`Outbox.handle`, calling
:meth:`Outbox.pump`) and central (subscribing to events, publishing acks)."""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from gateway.delivery.journal import Journal, NewEvent
from gateway.delivery.outbox import BrokerSettings, Outbox
from homecall.clock import ManualClock
from homecall.wire import ALERT_SEVERITY, AckMessage, Channel, EventType, topic
from orchestration.broker import CENTRAL_USER, MosquittoBroker
from tests.conftest import wait_for

GW = "gw-outbox-1"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def battery(i: int) -> NewEvent:
    return NewEvent(EventType.BATTERY, T0 + timedelta(seconds=i), float(i), data={"mv": 3000 + i})


def alert(i: int) -> NewEvent:
    return NewEvent(EventType.UNKNOWN_TAG, T0 + timedelta(seconds=i), float(i),
                    severity=ALERT_SEVERITY[EventType.UNKNOWN_TAG], data={"tag": f"em4100:#{i}"})


class Central:
    """Records the seqs published on the gateway's events topic; acks when told."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="central-outbox-test", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(CENTRAL_USER, broker.passwords[CENTRAL_USER])
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topic(GW, Channel.EVENTS), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seqs.append(int(json.loads(message.payload)["seq"]))

    def received(self) -> list[int]:
        with self._lock:
            return list(self.seqs)

    def ack(self, seq: int, max_seq: int | None = None) -> None:
        payload = AckMessage(seq=seq, max_seq=seq if max_seq is None else max_seq).to_bytes()
        self.client.publish(topic(GW, Channel.ACK), payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Core:
    """What the daemon's core thread does for the outbox."""

    def __init__(self, journal: Journal, settings: BrokerSettings, **kwargs: Any) -> None:
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.journal = journal
        self.outbox = Outbox(GW, journal, settings, self.inbox.put, **kwargs)

    def turn(self) -> None:
        for settled in self.outbox.take_settled():  # what paho set aside without a wake
            self.outbox.handle(settled)
        while True:
            try:
                self.outbox.handle(self.inbox.get_nowait())
            except queue.Empty:
                break
        self.outbox.pump()

    def until(self, predicate: Any, message: str, timeout: float = 10.0,
              meanwhile: Any = None) -> None:
        """Run the core until ``predicate``; ``meanwhile`` runs each turn until then (e.g.
        central's ack, which a gateway not yet subscribed would miss, so central repeats)."""
        def turn() -> Any:
            self.turn()
            if predicate():
                return True
            if meanwhile is not None:
                meanwhile()
            return False

        wait_for(turn, timeout=timeout, interval=0.05, message=message)


@pytest.fixture
def central(broker: MosquittoBroker) -> Iterator[Central]:
    running = Central(broker)
    yield running
    running.close()


def settings_for(broker: MosquittoBroker, user: str = GW) -> BrokerSettings:
    return BrokerSettings(port=broker.port, username=user, password=broker.add_user(user),
                          reconnect_base_s=0.2, reconnect_max_s=0.5)


def journal_with(path: Path, events: list[NewEvent]) -> Journal:
    """A journal holding ``events`` durably from an earlier run (so they are publishable)."""
    first = Journal(path, GW, "a" * 32, clock=ManualClock(T0))
    first.append(events, clock_ok=True)
    first.close()
    return Journal(path, GW, "b" * 32, clock=ManualClock(T0))


def test_new_events_wait_for_centrals_position_then_go(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    journal = Journal(tmp_path / "j.db", GW, "a" * 32, clock=ManualClock(T0))
    journal.append([battery(1), battery(2)], clock_ok=True)  # provisional: never published
    core = Core(journal, settings_for(broker))
    core.outbox.start()
    try:
        core.until(lambda: core.outbox.connected, "connected")
        core.turn()
        assert central.received() == []
        # Central holds nothing for this gateway (it says so after the gateway subscribed).
        core.until(lambda: journal.position_known, "central's position",
                   meanwhile=lambda: central.ack(0, 0))
        core.until(lambda: central.received() == [1, 2], "the provisional events published")
        core.until(lambda: journal.acked_seq == 2 and journal.backlog == 0, "acked and deleted",
                   meanwhile=lambda: central.ack(2))
    finally:
        core.outbox.stop()
        journal.close()


def test_routine_pubacks_and_acks_are_set_aside_without_waking_the_core(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    """Once central's position is known, an accepted PUBACK and central's ack wake nothing:
    they wait for the core's next batch (the gateway's CPU at a steady trickle of taps is
    mostly wake-ups). The first ack, which publishing waits on, is posted at once."""
    journal = journal_with(tmp_path / "j.db", [battery(1)])
    core = Core(journal, settings_for(broker))
    core.outbox.start()
    try:
        core.until(lambda: core.outbox.connected, "connected")
        core.until(lambda: journal.position_known, "central's position",
                   meanwhile=lambda: central.ack(0, 0))
        wait_for(lambda: central.received() == [1], message="the event published")
        wait_for(lambda: core.outbox.has_settled, message="its PUBACK set aside")
        central.ack(1)
        set_aside: list[Any] = []
        wait_for(lambda: set_aside.extend(core.outbox.take_settled()) or any(
            getattr(m, "channel", None) is Channel.ACK for m in set_aside),
            message="central's ack set aside")
        assert core.inbox.empty()  # nothing woke the core
        for message in set_aside:
            core.outbox.handle(message)
        assert (journal.acked_seq, journal.backlog, core.outbox.inflight) == (1, 0, 0)
    finally:
        core.outbox.stop()
        journal.close()


def test_after_an_outage_alerts_beyond_the_window_go_first_newest_first(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    events = [alert(i) if i in (3, 7, 12) else battery(i) for i in range(1, 16)]
    journal = journal_with(tmp_path / "j.db", events)
    core = Core(journal, settings_for(broker), window=4)  # 4 in flight at most
    core.outbox.start()
    try:
        core.until(lambda: len(central.received()) >= 15, "the backlog published")
        received = central.received()
        # The alerts not in the first window jump the queue; the rest go in seq order.
        assert received[:4] == [12, 7, 1, 2]
        assert sorted(received) == list(range(1, 16))  # each once
    finally:
        core.outbox.stop()
        journal.close()


def test_without_an_ack_everything_unacked_is_sent_again(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    journal = journal_with(tmp_path / "j.db", [battery(1), battery(2), battery(3)])
    core = Core(journal, settings_for(broker), ack_timeout_s=0.3)
    core.outbox.start()
    try:
        core.until(lambda: central.received()[:3] == [1, 2, 3], "first delivery")
        # Central stored only seq 1 (say the rest were lost on the way).
        core.until(lambda: journal.acked_seq == 1, "the ack", meanwhile=lambda: central.ack(1))
        core.until(lambda: central.received().count(2) >= 2 and central.received().count(3) >= 2,
                   "seqs 2 and 3 resent after the ack timeout")
        assert central.received().count(1) == 1  # what central acked is never resent
    finally:
        core.outbox.stop()
        journal.close()


def test_resends_that_bring_no_ack_back_off_until_one_does(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    """A central that stays silent (slow under a flood, or away) is not sent everything again
    every ``ack_timeout_s``: each fruitless resend doubles the wait; an ack that advances
    brings it back."""
    journal = journal_with(tmp_path / "j.db", [battery(1), battery(2)])
    core = Core(journal, settings_for(broker), ack_timeout_s=0.2)
    core.outbox.start()
    try:
        core.until(lambda: central.received()[:2] == [1, 2], "first delivery")
        core.until(lambda: journal.acked_seq == 1, "the ack", meanwhile=lambda: central.ack(1))
        assert core.outbox.ack_wait_s == 0.2  # the ack that advanced set the first wait
        copies = central.received().count(2)
        waits = [core.outbox.ack_wait_s]

        def three_resends() -> bool:
            core.turn()
            if core.outbox.ack_wait_s != waits[-1]:
                waits.append(core.outbox.ack_wait_s)
            return central.received().count(2) >= copies + 3 and len(waits) >= 4
        wait_for(three_resends, timeout=20, interval=0.02, message="three resends of seq 2")
        # 0.2 s, then at least 0.4, then at least 0.8: each wait at least twice the last
        assert all(later >= 2 * earlier for earlier, later in itertools.pairwise(waits))
        assert central.received().count(1) == 1  # what central acked is never resent
        core.until(lambda: journal.acked_seq == 2, "the next ack",
                   meanwhile=lambda: central.ack(2))
        assert core.outbox.ack_wait_s == 0.2  # progress: back to the first wait
    finally:
        core.outbox.stop()
        journal.close()


def test_a_refused_publish_stays_in_the_journal(
    tmp_path: Path, broker: MosquittoBroker, central: Central,
) -> None:
    journal = journal_with(tmp_path / "j.db", [alert(1), battery(2)])
    # Another gateway's login: the broker refuses it, at connect (the client id must be the
    # login's own) or, failing that, each publish on this gateway's topics (0x87).
    core = Core(journal, settings_for(broker, user="gw-someone-else"))
    core.outbox.start()
    try:
        core.until(lambda: core.outbox.denied + core.outbox.logins_refused >= 1,
                   "the broker's refusal")
        assert central.received() == []
        assert journal.backlog == 2 and journal.acked_seq == 0
    finally:
        core.outbox.stop()
        journal.close()


def test_a_backlog_bigger_than_the_brokers_burst_arrives_whole(tmp_path: Path) -> None:
    """The broker holds each gateway login to a publish rate (a burst, then so many a
    second); a gateway back from days offline with more than the burst waiting has the excess
    refused (0x87), keeps it in its journal, sends it again after a back-off, and central
    gets every event."""
    backlog = 300
    with MosquittoBroker(tmp_path / "broker", publish_rate_per_s=100,
                         publish_burst=50) as broker:
        central = Central(broker)
        journal = journal_with(tmp_path / "j.db", [battery(i) for i in range(1, backlog + 1)])
        core = Core(journal, settings_for(broker))
        core.outbox.start()

        def ack_what_arrived_in_order() -> None:
            arrived = set(central.received())
            contiguous = 0
            while contiguous + 1 in arrived:
                contiguous += 1
            central.ack(contiguous)

        try:
            core.until(lambda: journal.acked_seq == backlog, f"all {backlog} acked",
                       timeout=60, meanwhile=ack_what_arrived_in_order)
            assert core.outbox.denied > 0  # the rate did bite
            assert set(central.received()) == set(range(1, backlog + 1))
            assert journal.backlog == 0
        finally:
            core.outbox.stop()
            journal.close()
            central.close()
