"""Commissioning records: ``homecall gateway walk-test --central`` sends its record (who,
when, gateway and device firmware, each step with its result and times) with an
installer's token; central keeps it on the household (audited) and shows the household's
records newest first."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from central.auth.deps import AnyStaff, HomeEditor, PeopleDep
from central.db.engine import Database
from central.db.tables import audit
from central.db.tables import commissioning_records as commissioning_records_table
from central.deps import ClockDep, DbDep
from central.people.repository import NotFound as PersonNotFound
from homecall.clock import format_utc

router = APIRouter(tags=["commissioning"])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceLine(_Model):
    name: str = Field(max_length=64)
    state: str = Field(max_length=32)
    firmware: str | None = Field(None, max_length=64)


class StepLine(_Model):
    id: str = Field(max_length=64)
    prompt: str = Field(max_length=200)
    ok: bool
    detail: str = Field("", max_length=500)
    after_s: float | None = None
    latency_ms: float | None = None


class CommissioningRecord(_Model):
    gateway_id: str = Field(max_length=64)
    installer: str = Field(min_length=1, max_length=64)
    at: datetime
    gateway_version: str = Field(max_length=32)
    passed: bool
    devices: list[DeviceLine] = Field(max_length=16)
    steps: list[StepLine] = Field(min_length=1, max_length=64)


@router.post("/api/gateways/{gateway_id}/commissioning", status_code=201)
def add_record(gateway_id: str, record: CommissioningRecord, db: DbDep, clock: ClockDep,
               people: PeopleDep, user: HomeEditor) -> dict[str, Any]:
    if record.gateway_id != gateway_id:
        raise HTTPException(status_code=422, detail="gateway_id: does not match the URL")
    household = people.household_for_gateway(gateway_id, user.scope)
    if household is None:
        raise HTTPException(status_code=404, detail=f"no gateway {gateway_id!r}")
    now = format_utc(clock.now())
    with db.write() as conn:
        record_id = conn.execute(sa.insert(commissioning_records_table).values(
            household_id=household.id, gateway_id=gateway_id, installer=record.installer,
            at=format_utc(record.at), passed=int(record.passed),
            record=record.model_dump_json(), received_at=now, received_by=user.username,
        ).returning(commissioning_records_table.c.id)).scalar_one()
        conn.execute(sa.insert(audit).values(
            at=now, who=user.username, action="commissioning.recorded",
            target=f"household:{household.id}",
            detail=json.dumps({"record": int(record_id), "passed": record.passed})))
    return {"id": int(record_id), "household_id": household.id}


@router.get("/api/households/{household_id}/commissioning")
def records(household_id: str, db: DbDep, people: PeopleDep,
            user: AnyStaff) -> list[dict[str, Any]]:
    try:
        household = people.get_household(household_id, user.scope)
    except PersonNotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    return commissioning_records(db, household.id)


def commissioning_records(db: Database, household_id: str) -> list[dict[str, Any]]:
    """The household's walk-test records, newest first."""
    with db.read() as conn:
        rows = conn.execute(sa.select(commissioning_records_table).where(
            commissioning_records_table.c.household_id == household_id)
            .order_by(commissioning_records_table.c.id.desc())).all()
    return [{"id": r.id, "received_at": r.received_at, "received_by": r.received_by,
             **json.loads(r.record)} for r in rows]
