"""The scenario format: a household, its plan, and what happens, in local time.

:func:`load_scenario` validates a scenario file and returns a :class:`Scenario` whose
timeline actions carry their UTC instant. Clock times (``"08:00"``) are on the scenario's
``date`` in its ``timezone``; a time earlier than the scenario's ``start`` is on the next
day. Every problem is reported with where it is (``timeline[3].do: unknown action 'jump'``).
The scenario also yields the :class:`PlanDocument` central is given. Device actions are
played by ``firmware_sim``; infrastructure actions (network, broker, gateway, plan_update) by
the demo orchestrator.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from homecall import HomeCallError
from homecall.plan import DocumentCarer, PlanDocument, PlanError, Visit
from homecall.tags import TagError, canonical_tag

DEVICE_ACTIONS = frozenset(
    {"tap", "door", "keysafe", "button", "tamper", "battery", "unplug", "replug", "garbage"}
)
INFRA_ACTIONS = frozenset({"network", "gateway", "broker", "plan_update"})
ACTIONS = DEVICE_ACTIONS | INFRA_ACTIONS


class ScenarioError(HomeCallError, ValueError):
    """A scenario file that cannot be played; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScenarioVisit(_Strict):
    id: str
    service_user: str
    start: str
    duration_min: int = Field(gt=0)
    window: tuple[str, str] | None = None
    carers_required: int = Field(1, ge=1, le=4)
    carers: tuple[str, ...] = ()
    status: Literal["planned", "cancelled"] = "planned"
    agreed_window: tuple[str, str] | None = None
    agreed_at: str | None = None
    policy: dict[str, Any] = Field(default_factory=dict)


class ScenarioCarer(_Strict):
    id: str
    tags: tuple[str, ...] = ()


class Action(BaseModel):
    """One timeline step; fields beyond ``at``/``do`` depend on the action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: str
    do: str
    tag: str | None = None
    hold_s: float | None = Field(None, ge=0, le=600)
    state: str | None = None
    sensor: str | None = None
    name: str | None = None
    mv: int | None = Field(None, ge=0, le=20000)
    device: Literal["rfid", "hub", "nfc"] | None = None
    bytes: str | None = None
    visits: tuple[ScenarioVisit, ...] | None = None
    ndef: str | None = None
    token: str | None = None

    @field_validator("do")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown action {value!r}; known: {', '.join(sorted(ACTIONS))}")
        return value


class ScenarioFile(_Strict):
    name: str
    timezone: str = "Europe/London"
    date: date
    start: str
    end: str
    gateway: str
    service_users: tuple[str, ...]
    carers: tuple[ScenarioCarer, ...] = ()
    policy: dict[str, Any] = Field(default_factory=dict)
    service_user_policy: dict[str, dict[str, Any]] = Field(default_factory=dict)
    visits: tuple[ScenarioVisit, ...] = ()
    timeline: tuple[Action, ...] = ()
    expect: dict[str, Any] | None = None


_REQUIRED: dict[str, tuple[str, ...]] = {
    "tap": ("tag",),
    "door": ("state",),
    "keysafe": ("state",),
    "button": ("name",),
    "battery": ("mv",),
    "unplug": ("device",),
    "replug": ("device",),
    "garbage": ("device", "bytes"),
    "network": ("state",),
    "gateway": ("state",),
    "broker": ("state",),
    "plan_update": ("visits",),
}
_STATES: dict[str, tuple[str, ...]] = {
    "door": ("open", "closed"),
    "keysafe": ("open", "closed"),
    "tamper": ("on", "off", "active", "cleared"),
    "network": ("down", "up"),
    "gateway": ("crash", "restart"),
    "broker": ("down", "up"),
}


class Step:
    """A timeline action with its UTC instant and index in the file."""

    __slots__ = ("action", "at", "index")

    def __init__(self, index: int, at: datetime, action: Action) -> None:
        self.index = index
        self.at = at
        self.action = action

    def __repr__(self) -> str:
        return f"Step({self.index}, {self.at.isoformat()}, {self.action.do})"


class Scenario:
    """A validated scenario with times resolved."""

    def __init__(self, raw: ScenarioFile, source: str) -> None:
        self.raw = raw
        self.source = source
        try:
            self.zone = ZoneInfo(raw.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ScenarioError(f"{source}: unknown timezone {raw.timezone!r}") from err
        self.start_local = self._wall(raw.start, "start")
        self.end_local = self._wall(raw.end, "end")
        if self.end_local <= self.start_local:
            self.end_local += timedelta(days=1)
        self.start = self.to_utc(self.start_local)
        self.end = self.to_utc(self.end_local)
        self.steps = self._resolve_timeline()
        self.plan = self._plan_document(raw.visits)

    @property
    def name(self) -> str:
        return self.raw.name

    @property
    def gateway(self) -> str:
        return self.raw.gateway

    def to_utc(self, local: datetime) -> datetime:
        """Local wall time → UTC (an ambiguous autumn time is its first occurrence)."""
        return local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)

    def _wall(self, text: str, where: str) -> datetime:
        """``"08:00"`` on the scenario date; before the scenario's start means the next day."""
        try:
            clock_time = time.fromisoformat(text)
        except ValueError as err:
            raise ScenarioError(
                f"{self.source}: {where}: {text!r} is not a time like '08:00'"
            ) from err
        wall = datetime.combine(self.raw.date, clock_time)
        start = getattr(self, "start_local", None)
        if start is not None and wall < start:
            wall += timedelta(days=1)
        return wall

    def _resolve_timeline(self) -> list[Step]:
        steps: list[Step] = []
        for index, action in enumerate(self.raw.timeline):
            where = f"timeline[{index}] ({action.do})"
            for field_name in _REQUIRED.get(action.do, ()):
                if getattr(action, field_name) is None:
                    raise ScenarioError(f"{self.source}: {where}: needs '{field_name}'")
            allowed = _STATES.get(action.do)
            if allowed and action.state is not None and action.state not in allowed:
                raise ScenarioError(
                    f"{self.source}: {where}: state {action.state!r} is not one of {allowed}"
                )
            if action.tag is not None:
                try:
                    canonical_tag(action.tag)
                except TagError as err:
                    raise ScenarioError(f"{self.source}: {where}: {err}") from err
            if action.bytes is not None:
                try:
                    bytes.fromhex(action.bytes)
                except ValueError as err:
                    raise ScenarioError(f"{self.source}: {where}: 'bytes' must be hex") from err
            at = self.to_utc(self._wall(action.at, where))
            steps.append(Step(index, at, action))
        steps.sort(key=lambda s: (s.at, s.index))
        return steps

    def visit_objects(self, visits: tuple[ScenarioVisit, ...]) -> tuple[Visit, ...]:
        out = []
        for index, v in enumerate(visits):
            where = f"visits[{index}] ({v.id})"
            start = self._wall(v.start, where)
            try:
                out.append(
                    Visit(
                        id=v.id,
                        service_user=v.service_user,
                        start=start,
                        duration_min=v.duration_min,
                        window=self._pair(v.window, where) if v.window else None,
                        carers_required=v.carers_required,
                        carers=v.carers,
                        status=v.status,
                        agreed_window=(
                            self._pair(v.agreed_window, where) if v.agreed_window else None
                        ),
                        agreed_at=self._wall(v.agreed_at, where) if v.agreed_at else None,
                        policy=v.policy,
                    )
                )
            except ValidationError as err:
                raise ScenarioError(f"{self.source}: {where}: {err.errors()[0]['msg']}") from err
        return tuple(out)

    def _pair(self, pair: tuple[str, str], where: str) -> tuple[datetime, datetime]:
        first = self._wall(pair[0], where)
        second = datetime.combine(first.date(), self._wall(pair[1], where).time())
        if second <= first:
            second += timedelta(days=1)
        return first, second

    def _plan_document(self, visits: tuple[ScenarioVisit, ...]) -> PlanDocument:
        try:
            return PlanDocument(
                gateway=self.raw.gateway,
                timezone=self.raw.timezone,
                service_users=self.raw.service_users,
                carers=tuple(DocumentCarer(id=c.id, tags=c.tags) for c in self.raw.carers),
                policy=self.raw.policy,
                service_user_policy=self.raw.service_user_policy,
                visits=self.visit_objects(visits),
            )
        except (ValidationError, PlanError) as err:
            message = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
            raise ScenarioError(f"{self.source}: plan: {message}") from err

    def plan_update(self, visits: tuple[ScenarioVisit, ...]) -> PlanDocument:
        """The plan after a ``plan_update``: listed visits replace same-id ones or are added."""
        replacement = {v.id: v for v in self.visit_objects(visits)}
        merged = [replacement.pop(v.id, v) for v in self.plan.visits]
        merged.extend(replacement.values())
        self.plan = self.plan.model_copy(update={"visits": tuple(merged)})
        return self.plan

    def tags_by_kind(self, kind: str) -> list[str]:
        return [t for c in self.raw.carers for t in c.tags if t.lower().startswith(kind + ":")]


def parse_scenario(payload: str | bytes | dict[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        if isinstance(payload, dict):
            raw = ScenarioFile.model_validate(payload)
        else:
            raw = ScenarioFile.model_validate_json(payload)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<scenario>"
        raise ScenarioError(f"{source}: {where}: {first['msg']}") from err
    return Scenario(raw, source)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ScenarioError(f"cannot read scenario {path}: {err.strerror}") from err
    try:
        json.loads(text)
    except json.JSONDecodeError as err:
        raise ScenarioError(f"{path}: not JSON: {err.msg} at line {err.lineno}") from err
    return parse_scenario(text, str(path))
