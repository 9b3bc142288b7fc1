"""Gateway liveness from ``status`` messages and heartbeat times.

This module owns :class:`GatewayLiveness` (what central believes about one gateway: online,
offline or not yet heard, since when and why, its heartbeat interval and clock state, and the
last moment it had delivered everything it raised), the pure transitions :func:`on_status`
and :func:`check` that return :class:`LivenessChange` values, :func:`offline_deadline` (when
the gateway counts as offline if nothing more is heard), and :func:`offline_severity` (a
``gateway_offline`` is critical while one of the household's visit windows is open).

Rules: a gateway is offline after :data:`MISSED_HEARTBEATS` heartbeat intervals without a
status, or at once on its last-will ``offline``. It is back only on an ``online`` status (a
late event from before it died must not bring it back). Any status or event from an online
gateway counts as a sign of life.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from central.supervision import SupervisionError
from gateway.rules import visit_times
from homecall.plan import GatewayPlan
from homecall.wire import StatusMessage

MISSED_HEARTBEATS = 3
DEFAULT_HEARTBEAT_S = 10.0  # the gateway daemon's default; each status carries its own

LivenessState = Literal["unknown", "online", "offline"]
OfflineReason = Literal["last_will", "missed_heartbeats"]


@dataclass(frozen=True, slots=True)
class LivenessChange:
    gateway_id: str
    kind: Literal["offline", "online"]
    at: datetime
    reason: OfflineReason | None = None  # for "offline"
    offline_for: timedelta | None = None  # for "online" after an outage


@dataclass(frozen=True, slots=True)
class GatewayLiveness:
    gateway_id: str
    state: LivenessState = "unknown"
    last_seen: datetime | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    clock_ok: bool | None = None
    boot_id: str | None = None
    offline_since: datetime | None = None
    offline_reason: OfflineReason | None = None
    # The last time a status said: clock good and nothing waiting to be delivered. Every
    # alert the gateway raised more than one heartbeat before this has reached central.
    caught_up_at: datetime | None = None

    @property
    def needs_backup(self) -> bool:
        """Central raises the time-based alerts itself (offline, unknown or bad clock)."""
        return self.state != "online" or self.clock_ok is not True

    @property
    def delivered_until(self) -> datetime | None:
        if self.caught_up_at is None:
            return None
        return self.caught_up_at - timedelta(seconds=self.heartbeat_s)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise SupervisionError("liveness times must be aware UTC")
    return at


def on_status(
    live: GatewayLiveness, status: StatusMessage, received_at: datetime
) -> tuple[GatewayLiveness, list[LivenessChange]]:
    """Apply one ``status`` message received at ``received_at``."""
    _aware(received_at)
    if status.gateway_id != live.gateway_id:
        raise SupervisionError(
            f"status for {status.gateway_id!r} applied to gateway {live.gateway_id!r}"
        )
    if status.state == "offline":
        if live.state == "offline":
            return live, []
        new = replace(live, state="offline", offline_since=received_at,
                      offline_reason="last_will")
        return new, [LivenessChange(live.gateway_id, "offline", received_at, "last_will")]
    heartbeat = status.heartbeat_s if status.heartbeat_s and status.heartbeat_s > 0 else None
    caught_up = (
        received_at if status.clock_ok is True and status.backlog == 0 else live.caught_up_at
    )
    new = replace(
        live,
        state="online",
        last_seen=received_at,
        heartbeat_s=heartbeat or live.heartbeat_s,
        clock_ok=status.clock_ok,
        boot_id=status.boot_id or live.boot_id,
        offline_since=None,
        offline_reason=None,
        caught_up_at=caught_up,
    )
    changes: list[LivenessChange] = []
    if live.state != "online":
        outage = None if live.offline_since is None else received_at - live.offline_since
        changes.append(LivenessChange(live.gateway_id, "online", received_at,
                                      offline_for=outage))
    return new, changes


def on_event(live: GatewayLiveness, received_at: datetime) -> GatewayLiveness:
    """An event from the gateway: a sign of life if it is online (never brings it back)."""
    _aware(received_at)
    if live.state != "online":
        return live
    if live.last_seen is not None and live.last_seen >= received_at:
        return live
    return replace(live, last_seen=received_at)


def offline_deadline(live: GatewayLiveness) -> datetime | None:
    """When the gateway counts as offline if nothing more is heard (None: not online)."""
    if live.state != "online" or live.last_seen is None:
        return None
    return live.last_seen + timedelta(seconds=live.heartbeat_s * MISSED_HEARTBEATS)


def check(live: GatewayLiveness, now: datetime) -> tuple[GatewayLiveness, list[LivenessChange]]:
    """Called at :func:`offline_deadline`: the gateway is offline from that deadline."""
    _aware(now)
    deadline = offline_deadline(live)
    if deadline is None or now < deadline:
        return live, []
    new = replace(live, state="offline", offline_since=deadline,
                  offline_reason="missed_heartbeats")
    return new, [LivenessChange(live.gateway_id, "offline", deadline, "missed_heartbeats")]


def windows_open(plan: GatewayPlan | None, at: datetime) -> list[str]:
    """Ids of the plan's visits (not cancelled) whose arrival window contains ``at``."""
    if plan is None:
        return []
    found = []
    for visit in plan.visits:
        if visit.status == "cancelled":
            continue
        times = visit_times(plan, visit)
        if times.window_start <= at <= times.window_end:
            found.append(visit.id)
    return found


def offline_severity(plan: GatewayPlan | None, at: datetime) -> Literal["critical", "high"]:
    """``gateway_offline`` is critical while a visit window is open, high otherwise."""
    return "critical" if windows_open(plan, at) else "high"


def next_window_start(plan: GatewayPlan | None, after: datetime) -> datetime | None:
    """The next moment a visit window opens after ``after``: a ``gateway_offline`` still open
    then becomes critical (the scheduler wakes there)."""
    if plan is None:
        return None
    starts = [
        t.window_start
        for t in (visit_times(plan, v) for v in plan.visits if v.status != "cancelled")
        if t.window_start > after
    ]
    return min(starts, default=None)
