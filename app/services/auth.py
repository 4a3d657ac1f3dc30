"""OAuth2 grants (RFC 6749): password, refresh_token, client_credentials; revocation (RFC 7009)."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import verify_secret
from app.auth.principal import USER_SCOPES
from app.auth.tokens import (
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
)
from app.models import RefreshToken, RevokedAccessToken, ServiceClient, User
from app.services import audit
from app.settings import Settings

log = logging.getLogger("crossintel.auth")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: `error` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class TokenGrant:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None


INVALID_CREDENTIALS = "Invalid username or password."
INVALID_REFRESH = "The refresh token is invalid or expired."


async def _issue_for_user(
    session: AsyncSession, settings: Settings, user: User, family_id: uuid.UUID
) -> TokenGrant:
    scope = " ".join(USER_SCOPES)
    access, ttl = issue_access_token(settings, f"user:{user.id}", scope)
    refresh, refresh_hash = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=refresh_hash,
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    return TokenGrant(access, ttl, scope, refresh)


async def password_grant(
    session: AsyncSession, settings: Settings, username: str, password: str
) -> TokenGrant:
    """Sign a user in through the API: an access token and a refresh token."""
    user = await authenticate(session, settings, username, password)
    return await _issue_for_user(session, settings, user, uuid.uuid4())


async def authenticate(
    session: AsyncSession, settings: Settings, username: str, password: str
) -> User:
    """Check a user's password (API and web sign-in). Locked, disabled, unknown and
    wrong-password all raise the same OAuthError (the audit trail tells them apart); five
    failures in a row lock the account."""
    user = await session.scalar(select(User).where(User.username == username).with_for_update())
    now = datetime.now(UTC)
    if user is None:
        verify_secret(None, password)
        _audit_failure(session, "auth.sign_in", audit.Actor("anonymous", name=username[:120]))
    actor = audit.Actor("user", user.id, user.username, user.agency)
    if user.locked_until is not None and user.locked_until > now:
        verify_secret(None, password)
        log.warning("sign-in refused: account locked", extra={"user_id": str(user.id)})
        _audit_failure(session, "auth.sign_in", actor, reason="locked")
    if not verify_secret(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.lockout_threshold:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            log.warning("account locked after failed sign-ins", extra={"user_id": str(user.id)})
            audit.also(session, "auth.lockout", "user", user.id, until=user.locked_until)
        _audit_failure(session, "auth.sign_in", actor, reason="wrong_password")
    if not user.is_active:
        _audit_failure(session, "auth.sign_in", actor, reason="disabled")
    user.failed_logins = 0
    user.locked_until = None
    audit.note(session, action="auth.sign_in", actor=actor, object_type="user", object_id=user.id)
    return user


# What each kind of refused sign-in answers (RFC 6749 §5.2): error, description, status.
REFUSALS = {
    "auth.sign_in": ("invalid_grant", INVALID_CREDENTIALS, 400),
    "auth.refresh": ("invalid_grant", INVALID_REFRESH, 400),
    "auth.client_sign_in": ("invalid_client", "Client authentication failed.", 401),
}


def _audit_failure(session: AsyncSession, action: str, actor: audit.Actor, **details) -> NoReturn:
    """Note a refused sign-in (the endpoint answers it, so the note commits) and refuse."""
    error, description, status = REFUSALS[action]
    audit.note(session, action=action, actor=actor, outcome="failure", status=status, **details)
    raise OAuthError(error, description, status=status)


async def refresh_grant(session: AsyncSession, settings: Settings, token: str) -> TokenGrant:
    """Rotate a refresh token. A token presented twice revokes its whole family."""
    now = datetime.now(UTC)
    stored = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(token))
        .with_for_update()
    )
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        _audit_failure(session, "auth.refresh", audit.Actor("anonymous"))
    user = await session.get(User, stored.user_id)
    actor = audit.Actor("user", stored.user_id, user.username if user else None)
    if user is not None:
        actor.agency = user.agency
    if stored.used_at is not None:
        await _revoke_family(session, stored.family_id, now)
        log.warning("refresh token reuse: family revoked", extra={"user_id": str(stored.user_id)})
        _audit_failure(session, "auth.refresh", actor, reason="reused: sign-in revoked")
    if user is None or not user.is_active:
        _audit_failure(session, "auth.refresh", actor, reason="disabled")
    stored.used_at = now
    audit.note(session, action="auth.refresh", actor=actor, object_type="user", object_id=user.id)
    return await _issue_for_user(session, settings, user, stored.family_id)


async def client_credentials_grant(
    session: AsyncSession,
    settings: Settings,
    client_id: str,
    client_secret: str,
    requested_scope: str | None,
) -> TokenGrant:
    """Authenticate an agency system; the scope granted is within the client's own scopes."""
    client = await session.scalar(select(ServiceClient).where(ServiceClient.client_id == client_id))
    if not verify_secret(client.secret_hash if client else None, client_secret) or not (
        client and client.is_active
    ):
        who = audit.Actor("client", client.id, client.client_id) if client else None
        _audit_failure(
            session, "auth.client_sign_in", who or audit.Actor("anonymous", name=client_id[:120])
        )
    audit.note(
        session,
        action="auth.client_sign_in",
        actor=audit.Actor("client", client.id, client.client_id, client.agency),
        object_type="client",
        object_id=client.id,
    )
    allowed = set(client.scopes)
    if requested_scope:
        wanted = set(requested_scope.split())
        if not wanted <= allowed:
            raise OAuthError("invalid_scope", "The requested scope exceeds the client's scopes.")
        allowed = wanted
    scope = " ".join(sorted(allowed))
    access, ttl = issue_access_token(settings, f"client:{client.id}", scope)
    return TokenGrant(access, ttl, scope)


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def prune_expired(session: AsyncSession) -> int:
    """Forget what expiry already settles: revoked access tokens past their expiry, and
    refresh tokens past theirs (an expired token is refused whether it was used or not).
    Returns how many rows went."""
    now = datetime.now(UTC)
    revoked = await session.execute(
        delete(RevokedAccessToken).where(RevokedAccessToken.expires_at < now)
    )
    refresh = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < now))
    return revoked.rowcount + refresh.rowcount


async def revoke(session: AsyncSession, settings: Settings, token: str) -> None:
    """RFC 7009: revoke a refresh token (its family) or an access token; unknown tokens are
    ignored."""
    now = datetime.now(UTC)
    stored = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(token))
    )
    if stored is not None:
        await _revoke_family(session, stored.family_id, now)
        audit.note(
            session,
            action="auth.revoke",
            actor=audit.Actor("user", stored.user_id),
            object_type="user",
            object_id=stored.user_id,
            token="refresh",
        )
        return
    claims = decode_access_token(settings, token)
    if claims is not None and claims.expires_at > now:
        existing = await session.get(RevokedAccessToken, claims.jti)
        if existing is None:
            session.add(RevokedAccessToken(jti=claims.jti, expires_at=claims.expires_at))
        kind, _, ident = claims.subject.partition(":")
        audit.note(
            session,
            action="auth.revoke",
            actor=audit.Actor(kind, uuid.UUID(ident)),
            object_type=kind,
            object_id=ident,
            token="access",
        )
