"""Who acts on an alert: a user id with a role, or the system itself.

This module owns :data:`Role` and :class:`Actor`. Roles are the desk's, not the login
system's: ``monitor`` (monitoring staff at the central desk), ``duty`` (the out-of-hours
duty team), ``manager`` (coordinator or registered manager; the only role that can reopen
a resolved alert or sign off an incident), and ``system`` (timers and auto-resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["monitor", "duty", "manager", "system"]
ROLES: tuple[Role, ...] = ("monitor", "duty", "manager", "system")
STAFF_ROLES: frozenset[Role] = frozenset({"monitor", "duty", "manager"})


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: str
    role: Role

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if not self.user_id:
            raise ValueError("an actor needs a user id")


SYSTEM = Actor("system", "system")
