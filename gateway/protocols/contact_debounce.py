"""Contact debouncing for the sensor hub's door and key-safe reed switches (sans-IO).

A reed switch bounces: one door opening can arrive as several open/closed edges within a few
milliseconds. :class:`ContactDebouncer` reports a contact's new state only once it has held
for ``settle_s``. Time is passed in by the caller (monotonic link seconds for settling, the
clock's time of the edge for the report), so this module, like the frame codec beside it,
never touches a port, a thread or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class SettledContact:
    kind: Literal["door", "keysafe"]
    sensor: str
    open: bool
    at: datetime  # clock time of the last edge that left the previous stable state


@dataclass
class _Pending:
    open: bool
    first_at: datetime
    last_edge: float


class ContactDebouncer:
    """Collapse contact bounce: a state is reported once it has held for ``settle_s``.

    ``now`` arguments are monotonic seconds (link time, not the domain clock). A burst that
    ends where it started (closed-open-closed) reports nothing. Sensors never seen are
    assumed closed, so the first report of an open sensor is a change.
    """

    def __init__(self, settle_s: float = 0.04) -> None:
        self.settle_s = settle_s
        self.stable: dict[tuple[str, str], bool] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}

    def edge(self, kind: str, sensor: str, is_open: bool, at: datetime, now: float) -> None:
        key = (kind, sensor)
        baseline = self.stable.get(key, False)
        pending = self._pending.get(key)
        if pending is None:
            if baseline == is_open and key in self.stable:
                return
            self._pending[key] = _Pending(is_open, at, now)
        else:
            if pending.open == baseline and is_open != baseline:
                pending.first_at = at  # left the stable state again: this edge is the change
            pending.open = is_open
            pending.last_edge = now

    def settle(self, now: float) -> list[SettledContact]:
        out: list[SettledContact] = []
        for key, pending in list(self._pending.items()):
            if now - pending.last_edge < self.settle_s:
                continue
            del self._pending[key]
            previous = self.stable.get(key)
            self.stable[key] = pending.open
            if previous is None and not pending.open:
                continue  # first sight of a closed sensor: the assumed state, no change
            if previous == pending.open:
                continue
            kind: Literal["door", "keysafe"] = "door" if key[0] == "door" else "keysafe"
            out.append(SettledContact(kind, key[1], pending.open, pending.first_at))
        return out

    @property
    def pending(self) -> bool:
        return bool(self._pending)
