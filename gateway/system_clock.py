"""What the gateway asks of the machine it runs on: is the wall clock synchronised, which
boot is this, and giving freed memory back to the OS after a burst.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from pathlib import Path
from typing import Any

from homecall.clock import Clock, SystemClock


def detect_clock_ok(clock: Clock, mode: str) -> bool:
    """Is the wall clock known good? ``yes``/``no`` force it (tests, or a site whose NTP the
    gateway cannot see); ``auto``: a simulated clock is, a real one must be synchronised as
    systemd-timesyncd (its ``synchronized`` flag file), chrony (``chronyc tracking`` leap
    status Normal) or ``timedatectl`` (NTPSynchronized=yes) reports. Events recorded while
    it is not carry ``clock_ok: false`` with their monotonic time and boot id, so central
    can re-time them once a later event of the same boot has a good clock."""
    if mode in ("yes", "no"):
        return mode == "yes"
    if not isinstance(clock, SystemClock):
        return True
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    checks = (
        (["chronyc", "-n", "tracking"], lambda out: "Leap status     : Normal" in out),
        (["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
         lambda out: out.strip() == "yes"),
    )
    for command, verdict in checks:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=2)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and verdict(out.stdout):
            return True
    return False


def read_boot_id(clock: Clock) -> str:
    """The kernel's boot id on a real clock; a fresh random id under a simulated one."""
    if isinstance(clock, SystemClock):
        with contextlib.suppress(OSError):
            return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    return uuid.uuid4().hex


_MALLOC_TRIM: Any = None


def release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc keeps them after a burst otherwise)."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)
