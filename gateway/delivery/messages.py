"""The outbox's vocabulary: how to reach the broker (:class:`BrokerSettings`) and the small
messages paho's callbacks post to the core thread (connected, disconnected, a publish's
reason code, a message from central), plus what :meth:`Outbox.handle` answers when central's
first ack reconciled the journal (:class:`PositionKnown`)."""

from __future__ import annotations

from dataclasses import dataclass

from homecall.wire import Channel


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    #: The cap while events wait to be delivered: the broker is found within about this
    #: long of its return (jitter still spreads a street of gateways over the interval).
    reconnect_waiting_max_s: float = 2.0
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str


@dataclass(frozen=True, slots=True)
class PublishResult:
    mid: int
    reason_code: int


@dataclass(frozen=True, slots=True)
class Incoming:
    channel: Channel
    payload: bytes


@dataclass(frozen=True, slots=True)
class PositionKnown:
    """Returned by :meth:`Outbox.handle` when central's first ack reconciled the journal."""

    shifted_by: int
    lost: list[tuple[int, int]]


OutboxMessage = Connected | Disconnected | PublishResult | Incoming
