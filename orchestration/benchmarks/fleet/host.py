"""The machine the bench runs on: the open-file limit, raised to its hard limit before
Mosquitto starts (and inherits it), and what the results record about the host: the
kernel settings that bound a fleet of connections (sysctls, Mosquitto's own open-file limit
and listen backlog) and a one-line description of its CPU, kernel, Python and load.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import subprocess
from pathlib import Path


def raise_fd_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (Mosquitto, started after, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def read_sysctl(name: str) -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().split("\n")[0].strip()
    return "?"


def listen_backlog(port: int) -> str:
    """The listen queue length Mosquitto asked for (``ss -ltn``: Send-Q of the listener)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=5).stdout.split()
        if len(out) >= 3:
            return out[2]
    return "?"


def proc_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return " / ".join(line.split()[3:5])
    return "?"


def describe_machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores ({cpu}), kernel {platform.release()}, "
            f"Python {platform.python_version()}, load average at the end {load}")
