"""Web client sign-in: browser sessions kept in the database (app/web/).

The cookie carries a random token; the table keeps its SHA-256, the user, the CSRF token
of the session's forms and its times. A page request finds the session and moves its
`last_seen_at` in one statement, which also checks the idle and absolute limits; the
principal is then rebuilt from the database exactly as for a bearer token
(`load_principal`), so disabling an account or resetting its password ends its web
sessions too (the session's creation time stands for the token's issue time).
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, load_principal
from app.auth.tokens import hash_refresh_token as hash_token
from app.models import RevokedAccessToken, WebSession
from app.services import audit
from app.services import auth as auth_service
from app.settings import Settings


@dataclass(frozen=True)
class Signed:
    """A live web session and who is behind it."""

    principal: Principal
    csrf_token: str
    # When the session ends if nothing more happens (idle or absolute limit).
    ends_at: datetime


def session_jti(session_id: uuid.UUID) -> str:
    """The id under which a web session is revoked, beside access tokens' `jti`."""
    return f"web:{session_id}"


async def sign_in(session: AsyncSession, settings: Settings, username: str, password: str) -> str:
    """Check the password (auth.authenticate: lockout and audit included) and open a
    session. Returns the cookie's token; raises auth.OAuthError when refused."""
    user = await auth_service.authenticate(session, settings, username, password)
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=hash_token(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=datetime.now(UTC) + timedelta(hours=settings.web_session_hours),
        )
    )
    audit.note(session, via="web")
    return token


_LIVE = (
    "where token_hash = :hash and expires_at > now()"
    " and last_seen_at > now() - make_interval(mins => :idle)"
)
_COLUMNS = "id, user_id, csrf_token, created_at, last_seen_at, expires_at"
_TOUCH = text(f"update web_sessions set last_seen_at = now() {_LIVE} returning {_COLUMNS}")
_PEEK = text(f"select {_COLUMNS} from web_sessions {_LIVE}")


async def resume(
    session: AsyncSession, settings: Settings, token: str, *, touch: bool = True
) -> Signed | None:
    """The session a cookie names, or None when it is unknown, signed out, idle for too
    long, past its absolute limit, or its account is disabled or its password reset.

    `touch` (a page request) moves the session's last_seen_at. An event stream reads it
    without touching: an open dashboard alone does not keep a session alive."""
    query = _TOUCH if touch else _PEEK
    row = (
        await session.execute(query, {"hash": hash_token(token), "idle": settings.web_idle_minutes})
    ).first()
    if row is None:
        return None
    principal = await load_principal(
        session, f"user:{row.user_id}", session_jti(row.id), issued_at=row.created_at
    )
    if principal is None:
        return None
    idle_end = row.last_seen_at + timedelta(minutes=settings.web_idle_minutes)
    return Signed(principal, row.csrf_token, min(idle_end, row.expires_at))


async def sign_out(session: AsyncSession, token: str) -> None:
    """End a session: delete it and revoke its id, which also ends its event streams."""
    row = (
        await session.execute(
            text("delete from web_sessions where token_hash = :hash returning id, expires_at"),
            {"hash": hash_token(token)},
        )
    ).first()
    if row is not None:
        session.add(RevokedAccessToken(jti=session_jti(row.id), expires_at=row.expires_at))
        audit.note(session, object_type="web_session", object_id=row.id)


async def prune_expired(session: AsyncSession, settings: Settings) -> int:
    """Forget sessions past their idle or absolute limit (run by the retention job)."""
    result = await session.execute(
        text(
            "delete from web_sessions where expires_at <= now()"
            " or last_seen_at <= now() - make_interval(mins => :idle)"
        ),
        {"idle": settings.web_idle_minutes},
    )
    return result.rowcount or 0
