"""Typed FastAPI dependencies shared by the routers: the store, the ingest, the clock, the
settings.
Who is calling (and so the audit actor) comes from ``central.auth.deps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from central.db.engine import Database
from central.ingest.session import Ingest
from central.settings import CentralSettings
from central.store import Store
from homecall.clock import Clock
from homecall.wire import MAX_SEQ

#: The largest integer both engines store (a signed 64-bit column): ids in paths are held to
#: it, so an absurd one is a 422 saying so rather than a database overflow.
MAX_ROW_ID = 2**63 - 1
#: An alert's id in a path.
AlertId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the alert's id")]
#: A gateway's seq in a path.
Seq = Annotated[int, Path(ge=1, le=MAX_SEQ, description="a seq of the gateway's stream")]


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_ingest(request: Request) -> Ingest | None:
    return request.app.state.ingest


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def get_settings(request: Request) -> CentralSettings:
    return request.app.state.settings


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[CentralSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
IngestDep = Annotated[Ingest | None, Depends(get_ingest)]
ClockDep = Annotated[Clock, Depends(get_clock)]
