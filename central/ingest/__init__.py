"""Central's intake: the MQTT session that receives gateways' events and statuses and sends
acks (:mod:`central.ingest.session`), and the event record it writes them into, stored once
per ``(gateway_id, seq)`` with the hash chain checked and the projections kept current
(:mod:`central.ingest.events`)."""

from central import CentralError


class StoreError(CentralError):
    """The store cannot do what was asked."""
