"""The FastAPI application factory: one router per resource, state on ``app.state``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from central.api_docs import add_api_docs
from central.auth import router as auth_router
from central.dashboard import pages as dashboard_pages
from central.dashboard.session import LoginRequired
from central.db.engine import Database, DatabaseError
from central.db.migrate import upgrade
from central.ingest.session import Ingest
from central.metrics import router as metrics_router
from central.people.routers import ROUTERS as PEOPLE_ROUTERS
from central.provisioning.commissioning import router as commissioning_router
from central.provisioning.router import router as provisioning_router
from central.reports.router import router as contract_reports_router
from central.routers import alerts, escalation, gateways, plans, reports, visits, webhooks
from central.settings import CentralSettings
from central.store import Store
from central.supervision.runner import Supervisor
from homecall.clock import Clock, clock_from_spec, format_utc


def create_app(
    settings: CentralSettings | None = None,
    *,
    clock: Clock | None = None,
    with_ingest: bool = True,
    database: Database | None = None,
) -> FastAPI:
    """Central's app. ``database``: one already opened (``central serve`` opens it first, so
    a bad path is reported before anything starts); otherwise the settings' database."""
    settings = settings or CentralSettings()
    clock = clock or clock_from_spec(settings.clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or Database(settings.database_url)
        db.check()
        upgrade(db)  # the schema is always current before anything reads or writes
        app.state.db = db
        store = Store(db)
        ingest = Ingest(settings, store, clock) if with_ingest else None
        app.state.store = store
        app.state.ingest = ingest
        app.state.clock = clock
        app.state.settings = settings
        supervisor = (Supervisor(store, clock, retention_years=settings.retention_years,
                                 hearing=ingest.hearing_since)
                      if ingest is not None and settings.supervise else None)
        app.state.supervisor = supervisor
        if ingest is not None:
            if supervisor is not None:
                ingest.status_listeners.append(supervisor.wake)
            ingest.start()
        if supervisor is not None:
            supervisor.start()
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.stop()
            if ingest is not None:
                ingest.stop()
            db.dispose()

    app = FastAPI(title="HomeCall central", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    add_api_docs(app)
    app.include_router(auth_router.router)
    app.include_router(auth_router.users_router)
    for people_router in PEOPLE_ROUTERS:
        app.include_router(people_router)
    for module in (plans, visits, alerts, gateways, reports, webhooks, escalation):
        app.include_router(module.router)

    @app.get("/api/health", tags=["health"])
    def health() -> JSONResponse:
        """Ready (200, ``ok: true``) only when the database answers and the broker is
        connected (an API-only process: the database alone); otherwise 503 with which of
        the two is missing."""
        ingest: Ingest | None = app.state.ingest
        broker = bool(ingest and ingest.connected.is_set())
        try:
            app.state.db.check()
            database = True
        except DatabaseError:
            database = False
        ready = database and (broker or settings.api_only)
        return JSONResponse(status_code=200 if ready else 503, content={
            "ok": ready, "broker_connected": broker, "database_ok": database,
            "time": format_utc(app.state.clock.now()),
        })

    app.include_router(metrics_router)
    app.include_router(provisioning_router)
    app.include_router(commissioning_router)
    app.include_router(contract_reports_router)
    # The monitoring desk in a browser (pages are not part of the API's schema).
    app.include_router(dashboard_pages.router)
    app.mount("/static", StaticFiles(directory=Path(dashboard_pages.__file__).parent / "static"),
              name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    return app
