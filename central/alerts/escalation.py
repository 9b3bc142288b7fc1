"""Escalation policy: how long an alert may wait for someone to take it, and who is told
next.

This module owns :class:`EscalationPolicy` (per organisation: the time to acknowledge per
severity, the ordered tiers and the hours each tier covers, office hours in local time) and
the pure functions the scheduler calls: :func:`next_escalation` (when the alert's next
escalation is due and to which tier), :func:`due_escalation` (the command to apply once that
time has passed), and :func:`tiers_to_notify_on_raise` (who hears about a new alert at once).
Nothing here reads the clock or the database; the scheduler wakes at ``next_escalation``'s
time and applies what :func:`due_escalation` returns through the lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from central.alerts import AlertDeskError
from central.alerts.lifecycle import AWAITING_ACKNOWLEDGEMENT, AlertRecord, Escalate

SEVERITIES = ("low", "medium", "high", "critical")
TierHours = Literal["any", "office", "out_of_hours"]


class PolicyError(AlertDeskError):
    """An escalation policy that cannot work (no tier, unknown severity, bad zone...)."""


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    hours: TierHours = "any"


class OfficeHours(BaseModel):
    """When the council's and provider's day teams work, in local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "Europe/London"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    start: time = time(9, 0)
    end: time = time(17, 0)
    closed_days: frozenset[date] = frozenset()  # bank holidays

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @model_validator(mode="after")
    def _order(self) -> OfficeHours:
        if self.end <= self.start:
            raise ValueError("office hours must end after they start")
        if not self.weekdays <= set(range(7)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return self

    def contains(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        return (
            local.weekday() in self.weekdays
            and local.date() not in self.closed_days
            and self.start <= local.time() < self.end
        )


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier(name="desk", hours="any"),
    Tier(name="duty_team", hours="out_of_hours"),
    Tier(name="manager", hours="any"),
)


class EscalationPolicy(BaseModel):
    """One organisation's escalation policy. ``None`` for a severity: never escalated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    acknowledge_within_min: dict[str, int | None] = Field(
        default_factory=lambda: {"critical": 5, "high": 15, "medium": 60, "low": None}
    )
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    # Once the last tier has it, remind that tier this often until someone takes it.
    remind_last_tier_min: int | None = Field(15, gt=0, le=24 * 60)
    # Alert types whose out-of-hours tiers are told at once, not after a wait (a no-reply
    # report must reach the out-of-hours duty team immediately).
    immediate_out_of_hours: frozenset[str] = frozenset({"no_access"})
    office_hours: OfficeHours = OfficeHours()

    @field_validator("acknowledge_within_min")
    @classmethod
    def _severities(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        unknown = set(value) - set(SEVERITIES)
        if unknown:
            raise ValueError(f"unknown severities {sorted(unknown)}; use {', '.join(SEVERITIES)}")
        for severity, minutes in value.items():
            if minutes is not None and not 0 < minutes <= 24 * 60:
                raise ValueError(f"{severity}: minutes must be 1..1440 or null, not {minutes}")
        return value

    @model_validator(mode="after")
    def _tiers(self) -> EscalationPolicy:
        if not self.tiers:
            raise ValueError("an escalation policy needs at least one tier")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        if self.tiers[0].hours != "any":
            raise ValueError("the first tier must cover every hour (alerts always land there)")
        return self

    def wait_for(self, severity: str) -> timedelta | None:
        if severity not in SEVERITIES:
            raise PolicyError(f"unknown severity {severity!r}")
        minutes = self.acknowledge_within_min.get(severity)
        return None if minutes is None else timedelta(minutes=minutes)

    def covers(self, tier: Tier, at: datetime) -> bool:
        if tier.hours == "any":
            return True
        office = self.office_hours.contains(at)
        return office if tier.hours == "office" else not office

    @property
    def first_tier(self) -> str:
        return self.tiers[0].name

    def next_tier(self, current: str, at: datetime) -> str | None:
        """The next tier after ``current`` that works at ``at`` (None: ``current`` is last)."""
        names = [t.name for t in self.tiers]
        if current not in names:
            raise PolicyError(f"tier {current!r} is not in this policy ({', '.join(names)})")
        for tier in self.tiers[names.index(current) + 1 :]:
            if self.covers(tier, at):
                return tier.name
        return None


@dataclass(frozen=True, slots=True)
class EscalationStep:
    due_at: datetime
    to_tier: str
    remind: bool  # the same (last) tier is told again


def next_escalation(alert: AlertRecord, policy: EscalationPolicy) -> EscalationStep | None:
    """When this alert escalates next and to whom; None if it never will (taken, closed,
    a severity that does not escalate, or the last tier with no reminders)."""
    if alert.state not in AWAITING_ACKNOWLEDGEMENT:
        return None
    wait = policy.wait_for(alert.severity)
    if wait is None:
        return None
    due = alert.waiting_since + wait
    to = policy.next_tier(alert.tier, due)
    if to is not None:
        return EscalationStep(due_at=due, to_tier=to, remind=False)
    if policy.remind_last_tier_min is None:
        return None
    remind_at = alert.waiting_since + timedelta(minutes=policy.remind_last_tier_min)
    return EscalationStep(due_at=remind_at, to_tier=alert.tier, remind=True)


def due_escalation(
    alert: AlertRecord, policy: EscalationPolicy, now: datetime
) -> Escalate | None:
    """The escalation to apply now (through the lifecycle, as the system), if one is due."""
    step = next_escalation(alert, policy)
    if step is None or step.due_at > now:
        return None
    return Escalate(step.to_tier)


def tiers_to_notify_on_raise(
    policy: EscalationPolicy, alert_type: str, raised_at: datetime
) -> tuple[str, ...]:
    """Who is told the moment an alert is raised: the first tier, plus for the types in
    ``immediate_out_of_hours`` every out-of-hours tier when raised out of hours."""
    tiers = [policy.first_tier]
    if alert_type in policy.immediate_out_of_hours:
        tiers += [
            t.name for t in policy.tiers[1:]
            if t.hours == "out_of_hours" and policy.covers(t, raised_at)
        ]
    return tuple(tiers)
