"""Visit plans: the policy values, the plan coordinators upload, and the plan a gateway runs.

Two shapes, defined once here:

* :class:`PlanDocument` — what a coordinator (or a scenario) gives central: carers with their
  real tag ids, visits in local time.
* :class:`GatewayPlan` — what central sends a gateway on ``gw/{id}/plan``: the same visits,
  but carers known only by pseudonymous id and salted tag digests (see ``homecall.tags``).
  The rules engine (``gateway.rules``) runs on a GatewayPlan, at the gateway and at central.

Plan times are naive local wall times in the plan's ``timezone`` (Europe/London by default);
converting them to UTC, including on DST change days, is the rules engine's job.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from homecall import HomeCallError, signing
from homecall.tags import TagError, canonical_tag, split_pseudonym, tag_digest
from homecall.wire import WireError, validate_gateway_id


class PlanError(HomeCallError, ValueError):
    """A plan that cannot be accepted; the message says what is wrong."""


class Policy(BaseModel):
    """Every threshold of the visit rules, settable per organisation and per service user."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_tolerance_before_min: int = Field(30, ge=0, le=24 * 60)
    system_tolerance_after_min: int = Field(30, ge=0, le=24 * 60)
    incident_threshold_min: int = Field(60, ge=0, le=24 * 60)
    debounce_s: int = Field(30, ge=0, le=3600)
    match_before_min: int = Field(120, ge=0, le=24 * 60)
    match_after_min: int = Field(240, ge=0, le=24 * 60)
    no_access_departure_min: int = Field(10, ge=0, le=240)
    double_up_wait_min: int = Field(15, ge=0, le=240)
    short_visit_ratio: float = Field(0.75, ge=0, le=1)
    departure_missing_min: int = Field(60, ge=0, le=24 * 60)
    keysafe_tap_window_min: int = Field(10, ge=0, le=240)
    keysafe_left_open_min: int = Field(5, ge=0, le=240)
    door_left_open_min: int = Field(10, ge=0, le=240)
    corroboration_min: int = Field(10, ge=0, le=240)

    def with_overrides(self, overrides: dict[str, Any] | None) -> Policy:
        if not overrides:
            return self
        unknown = set(overrides) - set(type(self).model_fields)
        if unknown:
            raise PlanError(f"unknown policy values: {', '.join(sorted(unknown))}")
        try:
            return type(self).model_validate({**self.model_dump(), **overrides})
        except ValidationError as err:
            raise PlanError(f"bad policy override: {err.errors()[0]['msg']}") from err


class Visit(BaseModel):
    """One planned call, in local wall time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    service_user: str = Field(min_length=1, max_length=64)
    start: datetime
    duration_min: int = Field(gt=0, le=24 * 60)
    window: tuple[datetime, datetime] | None = None
    carers_required: int = Field(1, ge=1, le=4)
    carers: tuple[str, ...] = ()
    status: Literal["planned", "cancelled"] = "planned"
    agreed_window: tuple[datetime, datetime] | None = None
    agreed_at: datetime | None = None
    policy: dict[str, Any] = Field(default_factory=dict)

    @field_validator("start", "agreed_at")
    @classmethod
    def _naive(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("plan times are local wall times and must not carry an offset")
        return value

    @model_validator(mode="after")
    def _windows(self) -> Visit:
        for name in ("window", "agreed_window"):
            pair = getattr(self, name)
            if pair is None:
                continue
            if pair[0].tzinfo is not None or pair[1].tzinfo is not None:
                raise ValueError(f"{name} times are local wall times and must not carry an offset")
            if pair[1] <= pair[0]:
                raise ValueError(f"{name} must end after it starts")
        if (self.agreed_window is None) != (self.agreed_at is None):
            raise ValueError("agreed_window and agreed_at go together")
        if len(self.carers) > self.carers_required:
            raise ValueError("more carers assigned than carers_required")
        return self


class GatewayCarer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    tag_digests: tuple[str, ...]


class GatewayPlan(BaseModel):
    """The plan as a gateway holds it: pseudonymous ids only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1)
    gateway_id: str
    timezone: str = "Europe/London"
    tag_salt: str = Field(min_length=8)
    service_users: tuple[str, ...]
    carers: tuple[GatewayCarer, ...]
    policy: Policy = Policy()
    service_user_policy: dict[str, dict[str, Any]] = Field(default_factory=dict)
    visits: tuple[Visit, ...]
    issued_at: datetime | None = None
    signature: str | None = None

    @field_validator("gateway_id")
    @classmethod
    def _gateway(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err

    @model_validator(mode="after")
    def _consistent(self) -> GatewayPlan:
        _check_consistency(self.service_users, [c.id for c in self.carers], self.visits)
        return self

    def carer_for_tag(self, tag: str) -> str | None:
        """The carer holding ``tag`` (a tag id, or its :func:`~homecall.tags.pseudonym`
        under this plan's salt)."""
        split = split_pseudonym(tag)
        digest = split[1] if split is not None else tag_digest(self.tag_salt, tag)
        for carer in self.carers:
            if digest in carer.tag_digests:
                return carer.id
        return None

    def policy_for(self, visit: Visit) -> Policy:
        return self.policy.with_overrides(
            self.service_user_policy.get(visit.service_user)
        ).with_overrides(visit.policy)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, payload: bytes | str) -> GatewayPlan:
        try:
            return cls.model_validate_json(payload)
        except ValidationError as err:
            raise PlanError(f"bad plan: {_describe(err)}") from err


class DocumentCarer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    tags: tuple[str, ...] = ()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(canonical_tag(t) for t in value)
        except TagError as err:
            raise ValueError(str(err)) from err


class PlanDocument(BaseModel):
    """A household's plan as a coordinator uploads it to central."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str
    timezone: str = "Europe/London"
    service_users: tuple[str, ...]
    carers: tuple[DocumentCarer, ...] = ()
    policy: dict[str, Any] = Field(default_factory=dict)
    service_user_policy: dict[str, dict[str, Any]] = Field(default_factory=dict)
    visits: tuple[Visit, ...] = ()

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str) -> str:
        try:
            return validate_gateway_id(value)
        except WireError as err:
            raise ValueError(str(err)) from err

    @model_validator(mode="after")
    def _consistent(self) -> PlanDocument:
        _check_consistency(self.service_users, [c.id for c in self.carers], self.visits)
        Policy().with_overrides(self.policy)
        return self

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any]) -> PlanDocument:
        try:
            if isinstance(payload, dict):
                return cls.model_validate(payload)
            return cls.model_validate_json(payload)
        except ValidationError as err:
            raise PlanError(f"bad plan: {_describe(err)}") from err

    def for_gateway(
        self, version: int, tag_salt: str, issued_at: datetime | None = None
    ) -> GatewayPlan:
        return GatewayPlan(
            version=version,
            gateway_id=self.gateway,
            timezone=self.timezone,
            tag_salt=tag_salt,
            service_users=self.service_users,
            carers=tuple(
                GatewayCarer(id=c.id, tag_digests=tuple(tag_digest(tag_salt, t) for t in c.tags))
                for c in self.carers
            ),
            policy=Policy().with_overrides(self.policy),
            service_user_policy=self.service_user_policy,
            visits=self.visits,
            issued_at=issued_at,
        )


def _check_consistency(
    service_users: tuple[str, ...], carer_ids: list[str], visits: tuple[Visit, ...]
) -> None:
    if len(set(carer_ids)) != len(carer_ids):
        raise ValueError("carer ids must be unique")
    seen: set[str] = set()
    for visit in visits:
        if visit.id in seen:
            raise ValueError(f"visit id {visit.id!r} appears twice")
        seen.add(visit.id)
        if visit.service_user not in service_users:
            raise ValueError(
                f"visit {visit.id!r} names unknown service user {visit.service_user!r}"
            )
        for carer in visit.carers:
            if carer not in carer_ids:
                raise ValueError(f"visit {visit.id!r} assigns unknown carer {carer!r}")


def _describe(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<plan>'}: {e['msg']}" for e in err.errors()
    )


# -- signatures (central signs, the gateway verifies with central's Ed25519 public key) ------
PLAN_SIGNATURE_CONTEXT = b"homecall/gateway-plan/v1\x00"


def plan_signing_bytes(plan: GatewayPlan) -> bytes:
    """What a plan signature covers: a context string and the plan's canonical JSON
    (sorted keys, no whitespace) without the ``signature`` field."""
    import json

    body = plan.model_dump(mode="json", exclude={"signature"})
    return PLAN_SIGNATURE_CONTEXT + json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def sign_plan(plan: GatewayPlan, private_key: bytes) -> GatewayPlan:
    """``plan`` with ``signature`` set (hex Ed25519 over :func:`plan_signing_bytes`)."""
    try:
        signature = signing.sign(private_key, plan_signing_bytes(plan))
    except signing.SigningError as err:
        raise PlanError(f"plan signing key is not a raw 32-byte Ed25519 key: {err}") from err
    return plan.model_copy(update={"signature": signature.hex()})


def verify_plan(plan: GatewayPlan, public_key: bytes) -> None:
    """Raise :class:`PlanError` unless ``plan`` carries a valid signature by ``public_key``."""
    if not plan.signature:
        raise PlanError("plan is not signed")
    try:
        signature = bytes.fromhex(plan.signature)
    except ValueError as err:
        raise PlanError("plan signature is not hex") from err
    if len(public_key) != signing.KEY_BYTES:
        raise PlanError("plan public key is not a raw 32-byte Ed25519 key")
    try:
        signing.verify(public_key, plan_signing_bytes(plan), signature)
    except signing.SigningError as err:
        raise PlanError("plan signature does not verify against central's key") from err


def read_key_file(path: str | Path, length: int = 32) -> bytes:
    """A raw Ed25519 key file: ``length`` raw bytes, or the same as hex text."""
    data = Path(path).read_bytes()
    if len(data) == length:
        return data
    try:
        decoded = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        decoded = b""
    if len(decoded) != length:
        raise PlanError(f"{path}: expected a {length}-byte key (raw or hex)")
    return decoded


# -- applicability: the one check central runs before signing and the gateway before applying
#: Largest plan payload accepted (bytes of JSON): a household's fortnight is a few kB.
MAX_PLAN_BYTES = 1_000_000
#: Most visits one plan may carry (a busy household has ~10 a day).
MAX_PLAN_VISITS = 2000
#: Visits must start within this many days of now (either side).
PLAN_HORIZON_DAYS = 400


def check_plan_size(payload: bytes | str) -> None:
    """Raise :class:`PlanError` for a payload too large to consider at all."""
    size = len(payload.encode() if isinstance(payload, str) else payload)
    if size > MAX_PLAN_BYTES:
        raise PlanError(f"plan is {size} bytes; at most {MAX_PLAN_BYTES} are accepted")


def check_plan_applicable(
    timezone: str,
    visits: tuple[Visit, ...],
    policy_overrides: dict[str, dict[str, Any]],
    now: datetime,
) -> None:
    """Raise :class:`PlanError` unless a gateway can run this plan: the timezone exists,
    every policy override names a known value in range, there are at most
    :data:`MAX_PLAN_VISITS` visits, all within :data:`PLAN_HORIZON_DAYS` of ``now``."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise PlanError(f"unknown timezone {timezone!r}") from err
    if len(visits) > MAX_PLAN_VISITS:
        raise PlanError(f"plan has {len(visits)} visits; at most {MAX_PLAN_VISITS} are accepted")
    for who, overrides in policy_overrides.items():
        try:
            Policy().with_overrides(overrides)
        except PlanError as err:
            raise PlanError(f"policy for {who}: {err}") from err
    local_now = now.replace(tzinfo=None)
    horizon = timedelta(days=PLAN_HORIZON_DAYS)
    for visit in visits:
        try:
            Policy().with_overrides(visit.policy)
        except PlanError as err:
            raise PlanError(f"visit {visit.id!r}: {err}") from err
        if abs(visit.start - local_now) > horizon:
            raise PlanError(f"visit {visit.id!r} starts {visit.start:%Y-%m-%d}, more than "
                            f"{PLAN_HORIZON_DAYS} days from now")


def check_gateway_plan(plan: GatewayPlan, now: datetime) -> None:
    """:func:`check_plan_applicable` for a plan as a gateway holds it."""
    check_plan_applicable(plan.timezone, plan.visits, plan.service_user_policy, now)


def check_plan_document(document: PlanDocument, now: datetime) -> None:
    """:func:`check_plan_applicable` for a plan as a coordinator uploads it."""
    check_plan_applicable(document.timezone, document.visits,
                          {"organisation": document.policy, **document.service_user_policy}, now)
