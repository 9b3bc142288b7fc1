"""Typed FastAPI dependencies shared by the routers: the store, the ingest, the clock, the
settings.
Who is calling (and so the audit actor) comes from ``central.auth.deps``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from central.db.engine import Database
from central.ingest.session import Ingest
from central.settings import CentralSettings
from central.store import Store
from homecall.clock import Clock


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
