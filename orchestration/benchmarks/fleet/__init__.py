"""``homecall bench fleet``: N gateways on the real wire, in one asyncio process, against a real
Mosquitto and a real central.

Each simulated gateway is a paho-mqtt client driven by this process's asyncio loop (paho's
socket callbacks register its socket with the loop; no thread per client) and follows the wire
contract the real gateway follows: MQTT 5 with its own broker identity (user = gateway id, its
own password in the broker's password file, the per-gateway ACL), a retained ``offline``
last will, a retained ``online`` birth/heartbeat ``status`` every ``--heartbeat`` seconds,
hash-chained :class:`~homecall.wire.EventEnvelope` events with gap-free seqs, central's ``ack``
honoured (an event counts as ingested when an ack covers it) and everything above the last ack
sent again when acks stop advancing for ``--ack-timeout`` seconds. Central is only used through
its command line, its HTTP API and MQTT.

Phases, one after another:

* **connect**: all N gateways connect (at most ``--connect-concurrency`` CONNECTs waiting for
  their CONNACK, which keeps Mosquitto's listen backlog from overflowing) and publish their
  birth; reported: time until every CONNACK, and until central's first ack reached each.
* **steady**: ``--duration`` seconds of heartbeats and events (Poisson, one per
  ``--event-interval`` seconds per gateway on average); reported: events/s acked, ingest lag
  (publish to central's covering ack) p50/p99/max, broker/central/generator CPU and RSS.
* **stop**: ``--stop-sample`` gateways stop without DISCONNECT (``--stop-mode close``: the
  socket is closed, as when the gateway process dies; ``silent``: the socket is left open and
  unread, as when power or the line goes, so only the broker's keep-alive notices); the stop
  time of each is recorded, then the time the broker published its last will and the time
  central's ``/api/gateways`` showed it ``offline``. Central raising a ``gateway_offline``
  alert from missed heartbeats is measured from the same stop times once central has it.
* **flood**: every running gateway publishes ``--backlog`` events at once (as after a regional
  outage); reported: events/s ingested until the last ack, lag, CPU and RSS.

The last wills are watched by one more MQTT client on a thread of its own (central's identity),
connected before the gateways: its paho loop uses ``select()``, which cannot watch a descriptor
above 1023. Results are printed as JSON and kept in ``WORKDIR/results.json``; with
``--write-docs`` they replace this run's section of docs/benchmarks.md (one section per gateway
count, heartbeat and stop mode).

Its parts: :mod:`.cli` (the options, and ``run``: the stack up, the phases, the results
written), :mod:`.gateway` (one simulated gateway: its events and statuses),
:mod:`.generator` (the fleet of them on one loop), :mod:`.monitor` (CPU/RSS sampling, last
wills, central's API), :mod:`.phases` (connect, steady, stop, flood), :mod:`.report` (lag
summary, the docs section), :mod:`.host` (the machine's limits and description) and
:mod:`.errors`.
"""

from __future__ import annotations

from orchestration.benchmarks.fleet.cli import add_arguments, run
from orchestration.benchmarks.fleet.errors import FleetError

__all__ = ["FleetError", "add_arguments", "run"]
