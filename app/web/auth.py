"""Sign-in and sign-out of the web client."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.db import SessionDep
from app.services import auth as auth_service
from app.services import web_sessions
from app.web.pages import render
from app.web.session import COOKIE, SIGN_IN_COOKIE, cookie_options, same_token

public_router = APIRouter()
router = APIRouter()


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (no open redirection)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _sign_in_page(
    request: Request, *, status: int = 200, error: str | None = None, username: str = ""
) -> Response:
    """The form, with a fresh token in a cookie of its own and in the form (the session's
    CSRF token does not exist yet)."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {
            "sign_in_token": token,
            "next": local_path(request.query_params.get("suite")),
            "reason": request.query_params.get("raison"),
            "error": error,
            "username": username,
        },
        status,
    )
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, **cookie_options(request))
    return response


@public_router.get("/connexion", name="auth.sign_in_page", include_in_schema=False)
async def sign_in_page(request: Request) -> Response:
    """The sign-in form."""
    return _sign_in_page(request)


@public_router.post("/connexion", name="auth.sign_in", include_in_schema=False)
async def sign_in(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=120)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    sign_in_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password and open a session (same accounts, lockout and audit as the API's
    token endpoint); back to the form with a message otherwise, the name kept."""
    if not same_token(sign_in_token, request.cookies.get(SIGN_IN_COOKIE, "")):
        return _sign_in_page(
            request,
            status=403,
            error="Le formulaire a expiré. Saisissez à nouveau vos identifiants.",
            username=username,
        )
    if not username or not password:
        return _sign_in_page(
            request,
            status=400,
            error="Saisissez votre identifiant et votre mot de passe.",
            username=username,
        )
    try:
        token = await web_sessions.sign_in(
            session, request.app.state.settings, username.strip(), password
        )
    except auth_service.OAuthError:
        return _sign_in_page(
            request, status=400, error="Identifiant ou mot de passe incorrect.", username=username
        )
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(COOKIE, token, **cookie_options(request))
    response.delete_cookie(SIGN_IN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/deconnexion", name="auth.sign_out", include_in_schema=False)
async def sign_out(request: Request, session: SessionDep) -> Response:
    """End this browser's session (its open event streams stop too)."""
    await web_sessions.sign_out(session, request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/connexion?raison=deconnexion", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
