"""Test harness for the rules engine: plans written like the scenario files, a household
that is fed local-time events, and accessors for what a care manager would look at."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.rules import (
    ClockStatus,
    EngineInput,
    HouseholdState,
    PlanUpdate,
    RuleOutput,
    initial_state,
    step,
)
from homecall.observations import ButtonPress, ContactChange, TagRead
from homecall.plan import GatewayPlan, PlanDocument

SALT = "test-salt-0001"
TAGS: dict[str, str] = {
    "c-1": "em4100:0F00A1B2C1",
    "c-2": "em4100:0F00A1B2C2",
    "c-3": "nfc:04A224B1C2D380",
    "c-4": "em4100:0F00A1B2C4",
}
UNKNOWN_TAG = "em4100:0FDEADBEEF"
DAY = "2026-03-02"  # a Monday in GMT (UTC == local)


def local_dt(text: str, day: str = DAY) -> datetime:
    """'08:00' or '2026-03-03 08:00' → naive local datetime."""
    if " " in text:
        day, text = text.split(" ", 1)
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(text))


def utc(text: str, day: str = DAY, tz: str = "Europe/London") -> datetime:
    """A local wall time → aware UTC (first occurrence if ambiguous)."""
    return local_dt(text, day).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def z(text: str) -> datetime:
    """'2026-03-02T11:00:00' → aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def visit(
    vid: str = "v-1",
    start: str = "08:00",
    duration: int = 30,
    *,
    su: str = "su-1",
    window: tuple[str, str] | None = None,
    required: int = 1,
    carers: tuple[str, ...] = ("c-1",),
    day: str = DAY,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": vid,
        "service_user": su,
        "start": local_dt(start, day).isoformat(),
        "duration_min": duration,
        "carers_required": required,
        "carers": list(carers),
    }
    if window is not None:
        body["window"] = [local_dt(w, day).isoformat() for w in window]
    if "agreed_window" in extra:
        aw = extra.pop("agreed_window")
        body["agreed_window"] = [local_dt(w, day).isoformat() for w in aw]
        body["agreed_at"] = local_dt(extra.pop("agreed_at"), day).isoformat()
    body.update(extra)
    return body


def make_plan(
    visits: list[dict[str, Any]],
    *,
    service_users: tuple[str, ...] = ("su-1", "su-2"),
    policy: dict[str, Any] | None = None,
    service_user_policy: dict[str, dict[str, Any]] | None = None,
    timezone: str = "Europe/London",
    version: int = 1,
) -> GatewayPlan:
    doc = PlanDocument.parse(
        {
            "gateway": "gw-test-1",
            "timezone": timezone,
            "service_users": list(service_users),
            "carers": [{"id": cid, "tags": [tag]} for cid, tag in TAGS.items()],
            "policy": policy or {},
            "service_user_policy": service_user_policy or {},
            "visits": visits,
        }
    )
    return doc.for_gateway(version=version, tag_salt=SALT)


@dataclass
class Household:
    """Feeds a plan and local-time events to the engine, like the gateway daemon does."""

    plan: GatewayPlan | None
    day: str = DAY
    clock_ok: bool = True
    state: HouseholdState = field(init=False)
    outputs: list[RuleOutput] = field(default_factory=list)
    deadline: datetime | None = None
    now: datetime | None = None

    def __post_init__(self) -> None:
        self.state = initial_state(self.plan, clock_ok=self.clock_ok)

    def at(self, when: str) -> datetime:
        return utc(when, self.day, self.plan.timezone if self.plan else "Europe/London")

    def feed(self, event: EngineInput | None, now: datetime) -> list[RuleOutput]:
        self.state, out, self.deadline = step(self.state, event, now)
        self.now = now
        self.outputs.extend(out)
        return out

    def tap(self, when: str, carer: str | None = "c-1", *, tag: str | None = None,
            token: str | None = None) -> list[RuleOutput]:
        now = self.at(when)
        tag = tag or TAGS[carer or "c-1"]
        return self.feed(TagRead(tag=tag, at=now, carer_token=token), now)

    def door(self, when: str, is_open: bool, sensor: str = "front") -> list[RuleOutput]:
        now = self.at(when)
        return self.feed(ContactChange("door", sensor, is_open, now), now)

    def keysafe(self, when: str, is_open: bool, sensor: str = "keysafe") -> list[RuleOutput]:
        now = self.at(when)
        return self.feed(ContactChange("keysafe", sensor, is_open, now), now)

    def button(self, when: str, name: str = "no_reply") -> list[RuleOutput]:
        now = self.at(when)
        return self.feed(ButtonPress(name, now), now)

    def update(self, when: str, plan: GatewayPlan) -> list[RuleOutput]:
        self.plan = plan
        return self.feed(PlanUpdate(plan), self.at(when))

    def clock(self, when: str, ok: bool) -> list[RuleOutput]:
        return self.feed(ClockStatus(ok), self.at(when))

    def until(self, when: str) -> list[RuleOutput]:
        """Wake the engine at each deadline up to ``when`` (as APScheduler would)."""
        end = self.at(when)
        out: list[RuleOutput] = []
        while self.deadline is not None and self.deadline <= end:
            out += self.feed(None, self.deadline)
        out += self.feed(None, end)
        return out

    # what a care manager looks at
    def alerts(self) -> list[tuple[str, str | None, str]]:
        """(type, visit, local HH:MM:SS raised) for every alert output."""
        tz = ZoneInfo(self.plan.timezone if self.plan else "Europe/London")
        return [
            (o.type.value, o.visit_id, o.time.astimezone(tz).strftime("%H:%M:%S"))
            for o in self.outputs
            if o.severity is not None
        ]

    def types(self) -> list[str]:
        return [o.type.value for o in self.outputs]

    def of_type(self, kind: str) -> list[RuleOutput]:
        return [o for o in self.outputs if o.type.value == kind]

    def status(self, vid: str = "v-1") -> str:
        vs = self.state.visits[vid]
        return vs.status


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
