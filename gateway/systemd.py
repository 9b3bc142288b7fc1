"""Telling systemd how the gateway is (``sd_notify``): ``READY=1`` once the journal, drivers
and outbox are running, ``WATCHDOG=1`` on every heartbeat the core loop handles (so a
wedged core is restarted by ``WatchdogSec``), ``STOPPING=1`` on the way out. A datagram to
``$NOTIFY_SOCKET`` (an abstract socket when it starts with ``@``); does nothing when the
variable is unset, so running by hand is unaffected. No library needed for one sendto."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``); True if a notify socket took it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode(), address)
    except OSError as err:
        log.warning("systemd notify %s failed: %s", state, err)
        return False
    return True
