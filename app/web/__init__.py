"""The web client: server-rendered pages (Jinja2) under `/`, in French, on the same
services and the same policy as the API.

Every page is behind `require_web_principal` (carried by the router, as the API's router
carries `require_principal`): signed in by a session cookie, and CSRF-checked on every
state-changing request. Only the sign-in form and the static files are public.
"""

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import URL

from app.errors import Problem
from app.web import auth, cases, dashboard, escalations, records, units
from app.web.pages import HERE, render
from app.web.session import COOKIE, require_web_principal, require_web_watcher

PUBLIC_PATHS = frozenset({"/connexion", "/static"})
# Paths that are not the web client's: they answer problem+json.
_NOT_WEB = ("/api/", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc")


def install(app: FastAPI) -> None:
    """Mount the client's pages and static files on the app."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth.public_router)
    pages = APIRouter(dependencies=[Depends(require_web_principal)], include_in_schema=False)
    for module in (auth, dashboard, records, cases, escalations, units):
        pages.include_router(module.router)
    app.include_router(pages)
    watch = APIRouter(dependencies=[Depends(require_web_watcher)], include_in_schema=False)
    watch.include_router(dashboard.watch_router)
    app.include_router(watch)


_TITLES = {
    400: "Demande invalide",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Action impossible",
    409: "Conflit",
    410: "Renseignement supprimé",
    412: "Modifié entre-temps",
    413: "Fichier trop volumineux",
    415: "Type de fichier refusé",
    422: "Demande invalide",
    428: "Motif de consultation requis",
    500: "Erreur interne",
}


def problem_page(request: Request, problem: Problem) -> Response | None:
    """How the client answers a failure of one of its pages: back to sign-in for 401
    (saying why when a session has just ended), an HTML page otherwise. None for the API's
    paths, which keep problem+json."""
    path = request.url.path
    if path.startswith(_NOT_WEB):
        return None
    if problem.status == 401:
        query = {"suite": str(URL(path=path, query=request.url.query))}
        if request.cookies.get(COOKIE):
            query["raison"] = "expiree"
        target = URL("/connexion").include_query_params(**query)
        return RedirectResponse(str(target), status_code=303)
    purpose_asked = problem.code == "purpose_required" or any(
        "purpose" in str(part).lower() for error in problem.errors or () for part in error["loc"]
    )
    # A malformed id in a path names nothing that exists: same page as not found.
    status = problem.status
    if status == 422 and request.method == "GET" and not purpose_asked:
        status = 404
    response = render(
        request,
        "error.html",
        {
            "status": status,
            "title": _TITLES.get(status, "Erreur"),
            "code": problem.code,
            "purpose_asked": purpose_asked,
            "purpose_error": problem.detail if problem.status == 422 else None,
            "request_id": getattr(request.state, "request_id", None),
        },
        status,
    )
    for name, value in (problem.headers or {}).items():
        if name.lower() != "www-authenticate":  # a bearer challenge means nothing to a page
            response.headers[name] = value
    return response
