"""Users and their unit memberships, managed by platform admins (and the CLI)."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_secret
from app.auth.principal import Principal
from app.errors import Problem, conflict, forbidden, not_found
from app.models import Membership, RefreshToken, Unit, User
from app.services import audit


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise forbidden("Only platform administrators manage users.")


async def list_users(session: AsyncSession, principal: Principal) -> list[User]:
    _require_admin(principal)
    return list((await session.scalars(select(User).order_by(User.username))).all())


async def get_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    _require_admin(principal)
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("user")
    return user


async def user_by_username(session: AsyncSession, principal: Principal, username: str) -> User:
    _require_admin(principal)
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise Problem(404, "not_found", "Not found", f"No user named {username!r}.")
    return user


async def add_user(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    display_name: str,
    agency: str,
    password: str,
    email: str | None = None,
    platform_roles: list[str] | None = None,
) -> User:
    _require_admin(principal)
    user = User(
        username=username,
        display_name=display_name,
        agency=agency,
        email=email,
        password_hash=hash_secret(password),
        platform_roles=sorted(set(platform_roles or [])),
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict("user_exists", f"A user named {username!r} already exists.") from exc
    audit.note(session, object_type="user", object_id=user.id, username=username, agency=agency)
    return user


async def _end_sign_ins(session: AsyncSession, user: User) -> None:
    """End every earlier sign-in: its refresh tokens are revoked and its access tokens
    refused from the next request, so none outlives the change."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    user.tokens_not_before = datetime.now(UTC)


async def set_active(session: AsyncSession, principal: Principal, user: User, active: bool) -> User:
    """Enable or disable an account; a disabled user is refused on the very next request,
    and its sign-ins stay ended if it is enabled again."""
    _require_admin(principal)
    user.is_active = active
    if active:
        user.failed_logins = 0
        user.locked_until = None
    else:
        await _end_sign_ins(session, user)
    audit.note(session, object_type="user", object_id=user.id, active=active)
    return user


async def set_password(
    session: AsyncSession, principal: Principal, user: User, password: str
) -> User:
    """Set a new password; the refresh tokens of earlier sign-ins stop working."""
    _require_admin(principal)
    user.password_hash = hash_secret(password)
    user.failed_logins = 0
    user.locked_until = None
    await _end_sign_ins(session, user)
    audit.note(session, object_type="user", object_id=user.id, password="changed")
    return user


async def user_memberships(
    session: AsyncSession, user_id: uuid.UUID
) -> list[tuple[Membership, Unit]]:
    rows = await session.execute(
        select(Membership, Unit)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.user_id == user_id)
        .order_by(Unit.code)
    )
    return [(m, u) for m, u in rows]


async def add_membership(
    session: AsyncSession, principal: Principal, user: User, unit_id: uuid.UUID, role: str
) -> Membership:
    """Make `user` a member of a unit with `role`, or change the role they hold there."""
    _require_admin(principal)
    if await session.get(Unit, unit_id) is None:
        raise not_found("unit")
    membership = await session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.unit_id == unit_id)
    )
    if membership is None:
        membership = Membership(user_id=user.id, unit_id=unit_id, role=role)
        session.add(membership)
    else:
        membership.role = role
    await session.flush()
    audit.note(session, object_type="user", object_id=user.id, unit=str(unit_id), role=role)
    return membership


async def remove_membership(
    session: AsyncSession, principal: Principal, user: User, unit_id: uuid.UUID
) -> None:
    """Remove a membership; it stops granting anything on the very next request."""
    _require_admin(principal)
    result = await session.execute(
        delete(Membership).where(Membership.user_id == user.id, Membership.unit_id == unit_id)
    )
    if result.rowcount == 0:
        raise not_found("membership")
    audit.note(session, object_type="user", object_id=user.id, unit=str(unit_id))
