"""Typed FastAPI dependencies shared by the routers: the store, the ingest, the clock."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from central.alerts.actors import Actor
from central.db.engine import Database
from central.ingest.session import Ingest
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


def get_actor(request: Request) -> str:
    """Who is making a write, for the audit trail (staff login replaces this header)."""
    return request.headers.get("x-homecall-user", "system")


def get_desk_actor(user: Annotated[str, Depends(get_actor)]) -> Actor:
    """Who works an alert, with their desk role. Until staff accounts land every caller is a
    ``monitor``; staff login replaces this function (and ``get_actor``) with the logged-in
    user and their role, and nothing else changes (tests override it to act as a manager)."""
    return Actor(user, "monitor")


DbDep = Annotated[Database, Depends(get_db)]
StoreDep = Annotated[Store, Depends(get_store)]
IngestDep = Annotated[Ingest | None, Depends(get_ingest)]
ClockDep = Annotated[Clock, Depends(get_clock)]
ActorDep = Annotated[str, Depends(get_actor)]
DeskActorDep = Annotated[Actor, Depends(get_desk_actor)]
