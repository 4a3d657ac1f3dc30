"""Who is calling: the principal, rebuilt from the database on every request.

The token only says who the caller claims to be. Account state, memberships and client
status are read afresh each time, so disabling a user, removing a membership or disabling
a client takes effect on the very next request, whatever tokens are outstanding.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import decode_access_token
from app.db import SessionDep
from app.errors import forbidden, unauthorized
from app.models import Membership, RevokedAccessToken, ServiceClient, Unit, User

USER_SCOPES = ("records:read", "records:write")


@dataclass(frozen=True)
class UnitRole:
    unit_id: uuid.UUID
    unit_code: str
    role: str


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "client", "system"]
    id: uuid.UUID | None
    name: str
    agency: str | None
    memberships: tuple[UnitRole, ...] = ()
    platform_roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    max_marking: str = "DR"
    token_jti: str | None = field(default=None, compare=False)

    @property
    def unit_ids(self) -> tuple[uuid.UUID, ...]:
        return tuple(m.unit_id for m in self.memberships)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.platform_roles

    @property
    def is_auditor(self) -> bool:
        return "auditor" in self.platform_roles

    def role_in(self, unit_id: uuid.UUID) -> str | None:
        return next((m.role for m in self.memberships if m.unit_id == unit_id), None)


# The operator at the command line: acts as a platform admin, holds no unit.
SYSTEM = Principal(kind="system", id=None, name="cli", agency=None,
                   platform_roles=frozenset({"admin"}))


async def _memberships(session: AsyncSession, user_id: uuid.UUID) -> tuple[UnitRole, ...]:
    rows = await session.execute(
        select(Membership.unit_id, Unit.code, Membership.role)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.user_id == user_id)
        .order_by(Unit.code)
    )
    return tuple(UnitRole(unit_id, code, role) for unit_id, code, role in rows)


async def load_principal(
    session: AsyncSession,
    subject: str,
    jti: str | None = None,
    token_scopes: frozenset[str] | None = None,
) -> Principal | None:
    """The principal for a token subject, or None when the account is gone or disabled.

    Its scopes are those the token was granted (`token_scopes`, e.g. a client that asked
    for less than it may have), within what the account holds today.
    """
    kind, _, raw_id = subject.partition(":")
    try:
        ident = uuid.UUID(raw_id)
    except ValueError:
        return None
    if jti is not None:
        revoked = await session.scalar(
            select(exists().where(RevokedAccessToken.jti == jti))
        )
        if revoked:
            return None
    if kind == "user":
        user = await session.get(User, ident)
        if user is None or not user.is_active:
            return None
        return Principal(
            kind="user",
            id=user.id,
            name=user.username,
            agency=user.agency,
            memberships=await _memberships(session, user.id),
            platform_roles=frozenset(user.platform_roles),
            scopes=_within(frozenset(USER_SCOPES), token_scopes),
            max_marking="DR",
            token_jti=jti,
        )
    if kind == "client":
        row = (
            await session.execute(
                select(ServiceClient, Unit.code)
                .join(Unit, Unit.id == ServiceClient.unit_id)
                .where(ServiceClient.id == ident)
            )
        ).first()
        if row is None or not row[0].is_active:
            return None
        client, unit_code = row
        return Principal(
            kind="client",
            id=client.id,
            name=client.client_id,
            agency=client.agency,
            memberships=(UnitRole(client.unit_id, unit_code, "client"),),
            scopes=_within(frozenset(client.scopes), token_scopes),
            max_marking=client.max_marking,
            token_jti=jti,
        )
    return None


def _within(held: frozenset[str], granted: frozenset[str] | None) -> frozenset[str]:
    return held if granted is None else held & granted


async def require_principal(request: Request, session: SessionDep) -> Principal:
    """The authenticated caller; 401 with WWW-Authenticate: Bearer otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(error=None)
    claims = decode_access_token(request.app.state.settings, token.strip())
    if claims is None or claims.expires_at <= datetime.now(UTC):
        raise unauthorized("The bearer token is invalid or expired.")
    principal = await load_principal(session, claims.subject, claims.jti, claims.scopes)
    if principal is None:
        raise unauthorized("The account behind this token is disabled or revoked.")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise forbidden("This action is reserved to platform administrators.")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
