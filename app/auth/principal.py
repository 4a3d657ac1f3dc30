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
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import decode_access_token
from app.db import SessionDep
from app.errors import forbidden, unauthorized

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
    # The member units and every unit below them.
    below_unit_ids: frozenset[uuid.UUID] = frozenset()
    platform_roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    max_marking: str = "DR"
    token_jti: str | None = field(default=None, compare=False)
    token_issued_at: datetime | None = field(default=None, compare=False)

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
SYSTEM = Principal(
    kind="system", id=None, name="cli", agency=None, platform_roles=frozenset({"admin"})
)


# One round trip per request: the account, its memberships, whether the token was
# revoked, and the units at or below its units (whose `chain` records rise to it).
_USER_SQL = text("""
    select u.username, u.agency, u.is_active, u.platform_roles,
           exists(select 1 from revoked_access_tokens r where r.jti = :jti)
             or coalesce(u.tokens_not_before > :iat, false) as revoked,
           coalesce((select json_agg(json_build_array(m.unit_id, un.code, m.role)
                                     order by un.code)
                     from memberships m join units un on un.id = m.unit_id
                     where m.user_id = u.id), '[]') as memberships,
           (with recursive below(id) as (
                select m.unit_id from memberships m where m.user_id = u.id
                union select un.id from units un join below b on un.parent_id = b.id)
            select coalesce(array_agg(id), '{}') from below) as below
    from users u where u.id = :id
""")
_CLIENT_SQL = text("""
    select c.client_id, c.agency, c.is_active, c.scopes, c.max_marking, c.unit_id, un.code,
           exists(select 1 from revoked_access_tokens r where r.jti = :jti) as revoked,
           (with recursive below(id) as (
                select c.unit_id
                union select un2.id from units un2 join below b on un2.parent_id = b.id)
            select array_agg(id) from below) as below
    from service_clients c join units un on un.id = c.unit_id where c.id = :id
""")


async def load_principal(
    session: AsyncSession,
    subject: str,
    jti: str | None = None,
    token_scopes: frozenset[str] | None = None,
    issued_at: datetime | None = None,
) -> Principal | None:
    """The principal for a token subject, or None when the account is gone or disabled,
    or the token revoked.

    Its scopes are those the token was granted (`token_scopes`, e.g. a client that asked
    for less than it may have), within what the account holds today.
    """
    kind, _, raw_id = subject.partition(":")
    try:
        ident = uuid.UUID(raw_id)
    except ValueError:
        return None
    if kind == "user":
        row = (
            await session.execute(
                _USER_SQL, {"id": ident, "jti": jti or "", "iat": issued_at or datetime.now(UTC)}
            )
        ).first()
        if row is None or not row.is_active or row.revoked:
            return None
        return Principal(
            kind="user",
            id=ident,
            name=row.username,
            agency=row.agency,
            memberships=tuple(
                UnitRole(uuid.UUID(unit_id), code, role) for unit_id, code, role in row.memberships
            ),
            below_unit_ids=frozenset(row.below),
            platform_roles=frozenset(row.platform_roles),
            scopes=_within(frozenset(USER_SCOPES), token_scopes),
            max_marking="DR",
            token_jti=jti,
            token_issued_at=issued_at,
        )
    if kind == "client":
        row = (await session.execute(_CLIENT_SQL, {"id": ident, "jti": jti or ""})).first()
        if row is None or not row.is_active or row.revoked:
            return None
        return Principal(
            kind="client",
            id=ident,
            name=row.client_id,
            agency=row.agency,
            memberships=(UnitRole(row.unit_id, row.code, "client"),),
            below_unit_ids=frozenset(row.below),
            scopes=_within(frozenset(row.scopes), token_scopes),
            max_marking=row.max_marking,
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
    principal = await load_principal(
        session, claims.subject, claims.jti, claims.scopes, claims.issued_at
    )
    if principal is None:
        raise unauthorized("The account behind this token is disabled or revoked.")
    request.state.principal = principal
    request.state.token_expires_at = claims.expires_at
    return principal


PrincipalDep = Annotated[Principal, Depends(require_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise forbidden("This action is reserved to platform administrators.")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
