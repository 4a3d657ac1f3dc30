"""HTTP routers, one module per resource. Every API route is authenticated unless it is
on the short public list (health probes, token and revocation endpoints, OpenAPI)."""

from fastapi import APIRouter, Depends

from app.api import (
    audit,
    auth,
    cases,
    clients,
    deconfliction,
    escalations,
    events,
    health,
    notifications,
    operations,
    records,
    reviews,
    units,
    users,
)
from app.auth.principal import require_principal


def api_router() -> APIRouter:
    """/api/v1, authenticated by construction: the router itself carries the principal."""
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_principal)])
    modules = (
        auth,
        units,
        users,
        clients,
        records,
        reviews,
        cases,
        escalations,
        notifications,
        events,
        deconfliction,
        operations,
        audit,
    )
    for module in modules:
        router.include_router(module.router)
    router.include_router(deconfliction.admin_router)
    return router


def public_routers() -> list[APIRouter]:
    return [health.router, auth.public_router]
