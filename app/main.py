"""The ASGI application: create_app(settings) wires routers, middleware, errors, lifespan."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import api_router, public_routers
from app.db import Database, database_url, head_revision
from app.errors import install_error_handlers
from app.events import EventHub
from app.jobs import retention_loop
from app.limits import MULTIPART_OVERHEAD, BodyLimitMiddleware
from app.logs import RequestContextMiddleware
from app.services import audit as audit_service
from app.settings import Settings
from app.web import install as install_web
from app.web import problem_page

PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/api/v1/auth/token",
        "/api/v1/auth/revoke",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """Build the app. `db` may be given (tests); otherwise the lifespan opens it from settings."""
    settings.check_startup()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = db is None
        app.state.db = db or Database(database_url(settings))
        app.state.events = EventHub(app.state.db.url)
        await app.state.events.start()
        retention = None
        if settings.retention_interval_seconds:
            retention = asyncio.create_task(retention_loop(app.state.db, settings))
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            await app.state.events.stop()
            if own:
                await app.state.db.dispose()

    app = FastAPI(
        title="crossintel",
        version="0.1.0",
        summary="Drug-trafficking intelligence and cases of the CROSS units and OFAST.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.head_revision = head_revision()
    if db is not None:
        app.state.db = db
    install_error_handlers(app, on_problem=audit_service.record_denial, page=problem_page)
    for router in public_routers():
        app.include_router(router)
    app.include_router(api_router())
    install_web(app)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.attachment_max_bytes + MULTIPART_OVERHEAD
    )
    app.add_middleware(RequestContextMiddleware)
    return app
