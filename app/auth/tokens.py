"""Access tokens (JWT via python-jose, one pinned algorithm) and opaque refresh tokens."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jose import jwt
from jose.exceptions import JOSEError

from app.settings import Settings

ALGORITHM = "HS256"
# Clock skew tolerated between the app processes that issue and verify tokens (nbf, iat).
CLOCK_SKEW_SECONDS = 30


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    jti: str
    expires_at: datetime
    scopes: frozenset[str] = frozenset()
    issued_at: datetime | None = None


def issue_access_token(settings: Settings, subject: str, scope: str) -> tuple[str, int]:
    """Sign an access token for `subject` ("user:<uuid>" or "client:<uuid>")."""
    now = datetime.now(UTC)
    ttl = settings.access_token_ttl_seconds
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        # NumericDate may be fractional (RFC 7519 §2): to the microsecond, so a token
        # issued after a password reset is told apart from one issued just before it.
        "iat": now.timestamp(),
        "nbf": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
        "scope": scope,
    }
    token = jwt.encode(claims, settings.signing_key.get_secret_value(), algorithm=ALGORITHM)
    return token, ttl


def decode_access_token(settings: Settings, token: str) -> AccessClaims | None:
    """Verify signature, algorithm, issuer, audience and time claims; None when any fails.

    The algorithm list holds only ALGORITHM, so `alg: none` and algorithm-confusion
    tokens are refused before any key is used. python-jose only checks that `iat` is a
    number, so a token issued in the future is refused here.
    """
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            return None
        claims = jwt.decode(
            token,
            settings.signing_key.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_sub": True,
                "require_jti": True,
                "require_aud": True,
                "require_iss": True,
                "leeway": CLOCK_SKEW_SECONDS,
            },
        )
    except (JOSEError, ValueError, TypeError, KeyError):
        return None
    sub, jti, exp, iat = claims.get("sub"), claims.get("jti"), claims.get("exp"), claims.get("iat")
    scope = claims.get("scope", "")
    if not all(isinstance(v, str) for v in (sub, jti, scope)):
        return None
    if not isinstance(exp, int) or isinstance(exp, bool):
        return None
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        return None
    if iat > datetime.now(UTC).timestamp() + CLOCK_SKEW_SECONDS:
        return None
    return AccessClaims(
        sub,
        jti,
        datetime.fromtimestamp(exp, UTC),
        frozenset(scope.split()),
        datetime.fromtimestamp(iat, UTC),
    )


def new_refresh_token() -> tuple[str, str]:
    """A random opaque refresh token and the SHA-256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
