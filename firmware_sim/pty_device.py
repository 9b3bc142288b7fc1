"""A simulated serial device on a pseudo-terminal, with unplug and replug.

The simulator owns the pty's master side; the gateway opens the slave side through a stable
path (a symlink, like a udev ``/dev/serial/by-id`` name) exactly as it would a real UART.
Unplugging closes the master (the gateway's reads then fail as on a yanked USB adapter) and
removes the symlink; replugging makes a fresh pty and points the symlink at it.

Bytes written here are produced by the simulator's own encoders (``firmware_sim.*``), never
by gateway code. Received bytes (commands from the gateway) are handed to ``on_receive``
from a reader thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import threading
import tty
from collections.abc import Callable
from pathlib import Path

from firmware_sim import SimulatorError


class PtyDevice:
    """One serial device: a pty master plus a symlink the gateway opens."""

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        on_receive: Callable[[bytes], None] | None = None,
    ) -> None:
        self.link_path = Path(link_path)
        self.on_receive = on_receive
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._reader: threading.Thread | None = None
        self._stop_reader = threading.Event()
        self.plugged = False

    # -- lifecycle -------------------------------------------------------------------------
    def plug(self) -> str:
        """Create the pty and the symlink; returns the slave's real path."""
        with self._lock:
            if self.plugged:
                raise SimulatorError(f"{self.link_path} is already plugged in")
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            self._master, self._slave = master, slave
            slave_name = os.ttyname(slave)
            self.link_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(slave_name)
            tmp.replace(self.link_path)
            self.plugged = True
            self._stop_reader.clear()
            self._reader = threading.Thread(
                target=self._read_loop,
                args=(master,),
                name=f"pty-{self.link_path.name}",
                daemon=True,
            )
            self._reader.start()
            return slave_name

    def unplug(self) -> None:
        """Yank the cable: the symlink disappears and the gateway's open port breaks."""
        with self._lock:
            if not self.plugged:
                return
            self.plugged = False
            self._stop_reader.set()
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
        if self._reader is not None:
            self._reader.join(timeout=1.0)

    def replug(self) -> str:
        self.unplug()
        return self.plug()

    close = unplug

    # -- I/O -------------------------------------------------------------------------------
    def write(self, data: bytes) -> bool:
        """Send bytes to the gateway. Returns False (bytes lost, as on a real wire) if unplugged."""
        with self._lock:
            master = self._master
            if master is None:
                return False
            view = memoryview(data)
            while view:
                try:
                    written = os.write(master, view)
                except BlockingIOError:
                    select.select([], [master], [], 0.05)
                    continue
                except OSError as err:
                    if err.errno in (errno.EIO, errno.EBADF):
                        return False
                    raise
                view = view[written:]
            return True

    def _read_loop(self, master: int) -> None:
        while not self._stop_reader.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                # EIO: nobody has the slave open right now; not an error for a device.
                self._stop_reader.wait(0.02)
                continue
            if chunk and self.on_receive is not None:
                self.on_receive(chunk)

    def __enter__(self) -> PtyDevice:
        self.plug()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unplug()
