"""Who is at the browser: the signed-in principal of a page request, and CSRF checks.

`require_web_principal` is to the web client what `require_principal` is to the API: the
web router carries it, so no page is served to someone not signed in. It also refuses
every state-changing request (anything but GET and HEAD) whose form field `csrf_token`
or header `X-CSRF-Token` does not match the session's, before the page runs.
"""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.db import SessionDep
from app.errors import Problem
from app.services import web_sessions
from app.services.web_sessions import Signed

COOKIE = "crossintel_session"
SIGN_IN_COOKIE = "crossintel_signin"
SAFE_METHODS = frozenset({"GET", "HEAD"})


class SignInRequired(Problem):
    """No live session: the page answers with a redirection to the sign-in page."""

    def __init__(self, detail: str = "Sign-in required.") -> None:
        super().__init__(401, "unauthorized", "Unauthorized", detail)


def csrf_refused() -> Problem:
    return Problem(403, "csrf", "Forbidden", "The form's CSRF token is missing or wrong.")


async def submitted_csrf(request: Request) -> str:
    """The CSRF token a request carries: the `X-CSRF-Token` header (scripts) or the form's
    `csrf_token` field (the form is parsed once; the page reads it again from cache)."""
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf_token")
        return value if isinstance(value, str) else ""
    return ""


def same_token(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and secrets.compare_digest(given, expected)


def cookie_options(request: Request) -> dict:
    """HttpOnly, SameSite=Strict, Secure when the page is served over HTTPS."""
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "path": "/",
    }


async def _signed_in(request: Request, session: AsyncSession, *, touch: bool) -> Signed:
    token = request.cookies.get(COOKIE)
    settings = request.app.state.settings
    signed = await web_sessions.resume(session, settings, token, touch=touch) if token else None
    if signed is None:
        raise SignInRequired()
    request.state.principal = signed.principal
    request.state.csrf_token = signed.csrf_token
    request.state.session_ends_at = signed.ends_at
    return signed


async def require_web_principal(request: Request, session: SessionDep) -> Principal:
    """The signed-in user of this browser; the sign-in page otherwise. The request counts
    as activity (idle timeout). Unsafe methods must carry the session's CSRF token (403
    otherwise)."""
    signed = await _signed_in(request, session, touch=True)
    if request.method not in SAFE_METHODS and not same_token(
        await submitted_csrf(request), signed.csrf_token
    ):
        raise csrf_refused()
    return signed.principal


async def require_web_watcher(request: Request, session: SessionDep) -> Principal:
    """The signed-in user, for a read that is not activity (the event stream): an open
    dashboard alone does not keep a session alive."""
    return (await _signed_in(request, session, touch=False)).principal


WebPrincipalDep = Annotated[Principal, Depends(require_web_principal)]
WebWatcherDep = Annotated[Principal, Depends(require_web_watcher)]
