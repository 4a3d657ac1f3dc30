"""Authenticated by default: every route outside the short public list requires a principal,
both in its dependency tree and when called without a token.

Since FastAPI 0.137 `app.routes` holds one opaque node per included router, so a plain walk
over it sees none of the API; `iter_route_contexts` flattens the tree, and each context's
`dependant` includes the dependencies its routers add (the principal on /api/v1).
"""

import re
import uuid

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from app.auth.principal import require_principal
from app.main import PUBLIC_PATHS, create_app
from app.web import PUBLIC_PATHS as WEB_PUBLIC_PATHS
from app.web.session import require_web_principal, require_web_watcher

EXPECTED_PUBLIC = {
    "/healthz",
    "/readyz",
    "/api/v1/auth/token",
    "/api/v1/auth/revoke",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}

PARAM = re.compile(r"{[^}]+}")


GUARDS = (require_principal, require_web_principal, require_web_watcher)


def requires_principal(dependant: Dependant, guards=GUARDS) -> bool:
    """Whether a route's dependency tree holds one of `guards` (the API's bearer token,
    the web client's session)."""
    return any(
        dep.call in guards or requires_principal(dep, guards) for dep in dependant.dependencies
    )


def routes(app) -> list[RouteContext]:
    return list(iter_route_contexts(app.routes))


def protected_api_routes(app) -> list[RouteContext]:
    return [
        r
        for r in routes(app)
        if isinstance(r.original_route, APIRoute)
        and r.path.startswith("/api/")
        and r.path not in PUBLIC_PATHS
    ]


def web_page_routes(app) -> list[RouteContext]:
    """The web client's routes outside its public list (sign-in form, static files)."""
    return [
        r
        for r in routes(app)
        if isinstance(r.original_route, APIRoute)
        and not r.path.startswith("/api/")
        and r.path not in PUBLIC_PATHS
        and r.path not in WEB_PUBLIC_PATHS
    ]


def unauthenticated_routes(app) -> list[tuple[str, str | None, list[str]]]:
    """Routes that are neither on the public list nor guarded by require_principal."""
    offenders = []
    for route in routes(app):
        if route.path in PUBLIC_PATHS or route.path in WEB_PUBLIC_PATHS:
            continue
        if isinstance(route.original_route, APIRoute) and requires_principal(route.dependant):
            continue
        offenders.append(
            (type(route.original_route).__name__, route.path, sorted(route.methods or ()))
        )
    return offenders


def test_public_list_is_exactly_what_is_expected():
    assert PUBLIC_PATHS == EXPECTED_PUBLIC
    assert WEB_PUBLIC_PATHS == {"/connexion", "/static"}


def test_only_public_paths_are_unauthenticated(app):
    assert unauthenticated_routes(app) == []
    served = {r.path for r in routes(app)}
    assert PUBLIC_PATHS <= served, "the public list names paths that are not served"
    assert WEB_PUBLIC_PATHS <= served, "the web public list names paths that are not served"


def test_public_api_routes_do_not_ask_for_a_principal(app):
    public = [
        r for r in routes(app) if isinstance(r.original_route, APIRoute) and r.path in PUBLIC_PATHS
    ]
    assert {r.path for r in public} == {
        "/healthz",
        "/readyz",
        "/api/v1/auth/token",
        "/api/v1/auth/revoke",
    }
    assert not any(requires_principal(r.dependant) for r in public)


def test_the_walk_sees_the_api(app):
    """Not vacuous: the walk finds the foundation's authenticated routes."""
    seen = {(m, r.path) for r in protected_api_routes(app) for m in r.methods}
    assert {
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/units"),
        ("GET", "/api/v1/units/{unit_id}"),
        ("POST", "/api/v1/admin/units"),
        ("PATCH", "/api/v1/admin/units/{unit_id}"),
        ("GET", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/users"),
        ("PATCH", "/api/v1/admin/users/{user_id}"),
        ("GET", "/api/v1/admin/users/{user_id}/memberships"),
        ("PUT", "/api/v1/admin/users/{user_id}/memberships"),
        ("DELETE", "/api/v1/admin/users/{user_id}/memberships/{unit_id}"),
        ("GET", "/api/v1/admin/clients"),
        ("POST", "/api/v1/admin/clients"),
        ("POST", "/api/v1/admin/clients/{client_id}/rotate"),
        ("POST", "/api/v1/admin/clients/{client_id}/disable"),
    } <= seen


def test_an_added_unauthenticated_route_is_caught(settings, db):
    """The guard itself: routes added without the principal, at any depth, are reported."""
    app = create_app(settings, db=db)

    @app.get("/api/v1/leak")
    async def leak() -> dict:
        return {}

    nested = APIRouter(prefix="/api/v1/nested")
    inner = APIRouter(prefix="/inner")

    @inner.post("/{thing_id}")
    async def nested_leak(thing_id: str) -> dict:
        return {}

    nested.include_router(inner)
    app.include_router(nested)
    offenders = {(path, tuple(methods)) for _, path, methods in unauthenticated_routes(app)}
    assert offenders == {
        ("/api/v1/leak", ("GET",)),
        ("/api/v1/nested/inner/{thing_id}", ("POST",)),
    }


def test_every_protected_route_depends_on_require_principal(app):
    missing = [
        (sorted(r.methods), r.path)
        for r in protected_api_routes(app)
        if not requires_principal(r.dependant, (require_principal,))
    ]
    assert missing == []


def test_every_web_page_depends_on_the_web_session(app):
    """Pages are behind the session cookie (never a bearer token), and named
    `object.verb`, which is the action their audit event records."""
    pages = web_page_routes(app)
    assert {("GET", "/"), ("POST", "/deconnexion"), ("GET", "/evenements")} <= {
        (m, r.path) for r in pages for m in r.methods
    }
    missing = [
        (sorted(r.methods), r.path)
        for r in pages
        if not requires_principal(r.dependant, (require_web_principal, require_web_watcher))
    ]
    assert missing == []
    unnamed = [r.path for r in pages if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)+", r.name)]
    assert unnamed == []


async def test_every_web_page_sends_a_stranger_to_sign_in(app, client):
    """No session: every page, read or form, answers with the sign-in page's address
    (and the page to come back to), never with content."""
    checked = 0
    for route in web_page_routes(app):
        path = PARAM.sub(lambda _: str(uuid.uuid4()), route.path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            response = await client.request(method, path)
            where = f"{method} {route.path}"
            assert response.status_code == 303, where
            location = response.headers["location"]
            assert location.startswith("/connexion?suite="), where
            checked += 1
    assert checked >= 3


async def test_every_protected_route_answers_401_without_a_token(app, client):
    checked = 0
    for route in protected_api_routes(app):
        path = PARAM.sub(lambda _: str(uuid.uuid4()), route.path)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            response = await client.request(method, path)
            where = f"{method} {route.path}"
            assert response.status_code == 401, where
            assert response.headers["content-type"].startswith("application/problem+json"), where
            assert response.headers["www-authenticate"].startswith("Bearer"), where
            body = response.json()
            assert body["status"] == 401 and body["code"] == "unauthorized", where
            checked += 1
    assert checked >= 15
