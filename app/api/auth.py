"""Sign-in (OAuth2 token endpoint), token revocation and the caller's identity."""

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.models import User
from app.schemas.auth import MembershipOut, MeResponse, OAuthErrorResponse, TokenResponse
from app.services import auth as auth_service

public_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
router = APIRouter(tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(exc: auth_service.OAuthError) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="crossintel"'
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers=headers,
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


@public_router.post(
    "/token",
    response_model=TokenResponse,
    responses={400: {"model": OAuthErrorResponse}, 401: {"model": OAuthErrorResponse}},
    name="auth.token",
)
async def token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> Response:
    """OAuth2 token endpoint (RFC 6749), form-encoded.

    - `grant_type=password` with `username` and `password`: a user signs in; the answer has
      an access token and a refresh token. Five failed passwords in a row lock the account
      for 15 minutes; a locked account is answered like a wrong password.
    - `grant_type=refresh_token` with `refresh_token`: rotates it; presenting a refresh token
      that was already used revokes every token of its sign-in.
    - `grant_type=client_credentials`: an agency system, authenticated by HTTP Basic or by
      `client_id`/`client_secret` in the form; optional `scope` within the client's scopes.

    Errors follow RFC 6749 §5.2: `{"error", "error_description"}`, 400 (401 for a client
    that failed to authenticate).
    """
    settings = request.app.state.settings
    try:
        if not grant_type:
            raise auth_service.OAuthError("invalid_request", "grant_type is required.")
        if grant_type == "password":
            if not username or password is None:
                raise auth_service.OAuthError(
                    "invalid_request", "username and password are required."
                )
            grant = await auth_service.password_grant(session, settings, username, password)
        elif grant_type == "refresh_token":
            if not refresh_token:
                raise auth_service.OAuthError("invalid_request", "refresh_token is required.")
            grant = await auth_service.refresh_grant(session, settings, refresh_token)
        elif grant_type == "client_credentials":
            credentials = _basic_credentials(request) or (client_id, client_secret)
            if not credentials[0] or credentials[1] is None:
                raise auth_service.OAuthError(
                    "invalid_client", "Client authentication failed.", status=401
                )
            grant = await auth_service.client_credentials_grant(
                session, settings, credentials[0], credentials[1], scope
            )
        else:
            raise auth_service.OAuthError(
                "unsupported_grant_type", f"grant_type {grant_type!r} is not supported."
            )
    except auth_service.OAuthError as exc:
        # Answered, not raised: the failed-sign-in counter and a revoked family must commit.
        return _oauth_error(exc)
    body = TokenResponse(
        access_token=grant.access_token,
        expires_in=grant.expires_in,
        scope=grant.scope,
        refresh_token=grant.refresh_token,
    )
    return JSONResponse(body.model_dump(exclude_none=True), headers=NO_STORE)


@public_router.post(
    "/revoke", status_code=200, responses={400: {"model": OAuthErrorResponse}}, name="auth.revoke"
)
async def revoke(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Form()] = None,
    token_type_hint: Annotated[str | None, Form()] = None,
) -> Response:
    """Token revocation (RFC 7009): a refresh token revokes its whole sign-in; an access
    token is refused from the next request on. Unknown tokens are answered 200 too; a
    request without `token` is an RFC 6749 §5.2 `invalid_request`."""
    if not token:
        return _oauth_error(auth_service.OAuthError("invalid_request", "token is required."))
    await auth_service.revoke(session, request.app.state.settings, token)
    return Response(status_code=200, headers=NO_STORE)


@router.get("/me", response_model=MeResponse, name="auth.me")
async def me(session: SessionDep, principal: PrincipalDep) -> MeResponse:
    """The caller: identity, agency, unit memberships and roles, platform roles, scopes."""
    display_name = None
    if principal.kind == "user":
        user = await session.get(User, principal.id)
        display_name = user.display_name if user else None
    return MeResponse(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        display_name=display_name,
        agency=principal.agency,
        memberships=[
            MembershipOut(unit_id=m.unit_id, unit_code=m.unit_code, role=m.role)
            for m in principal.memberships
        ],
        platform_roles=sorted(principal.platform_roles),
        scopes=sorted(principal.scopes),
        max_marking=principal.max_marking,
    )
