"""When the core thread is woken: APScheduler's only job in the gateway.

Two jobs, each of which only posts a message to the core queue: the heartbeat every
``heartbeat_s`` seconds, and one ``rules-deadline`` job at the rules engine's
``next_deadline`` (re-armed after every committed step). The engine decides everything
about time; a simulated clock's deadline is converted to real seconds by
:meth:`~homecall.clock.Clock.real_seconds_until`, so a scenario can run a day in seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.core_loop import Heartbeat, Tick
from homecall.clock import Clock


class Wakeups:
    """The heartbeat and the engine's next deadline, as posts to the core."""

    def __init__(self, clock: Clock, post: Callable[[Any], None], heartbeat_s: float) -> None:
        self.clock = clock
        self.post = post
        self.heartbeat_s = heartbeat_s
        self._scheduler: Any = None

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        # Jobs only post to the core queue: one worker thread is enough (default: up to 10).
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max_workers=1)})
        self._scheduler.add_job(self.post, "interval", args=[Heartbeat()],
                                seconds=self.heartbeat_s, id="heartbeat")
        self._scheduler.start()

    def arm(self, deadline: datetime | None) -> None:
        """Wake the core at ``deadline`` (None: no deadline is pending)."""
        if self._scheduler is None:
            return
        if deadline is None:
            with contextlib.suppress(Exception):
                self._scheduler.remove_job("rules-deadline")
            return
        wait = max(0.0, self.clock.real_seconds_until(deadline))
        self._scheduler.add_job(self.post, "date", args=[Tick()],
                                run_date=datetime.fromtimestamp(time.time() + wait, UTC),
                                id="rules-deadline", replace_existing=True,
                                misfire_grace_time=None)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
