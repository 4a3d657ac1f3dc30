"""Users and memberships, managed by platform admins."""

import uuid

from fastapi import APIRouter, Response

from app.auth.principal import AdminDep
from app.db import SessionDep
from app.schemas.users import MembershipCreate, MembershipOut, UserCreate, UserOut, UserUpdate
from app.services import users as users_service

router = APIRouter(prefix="/admin/users", tags=["admin"])


@router.get("", response_model=list[UserOut], name="user.list")
async def list_users(session: SessionDep, principal: AdminDep) -> list[UserOut]:
    """Every account (admin)."""
    return [UserOut.model_validate(u) for u in await users_service.list_users(session, principal)]


@router.post("", response_model=UserOut, status_code=201, name="user.create")
async def add_user(body: UserCreate, session: SessionDep, principal: AdminDep) -> UserOut:
    """Create an account (admin); unit memberships are added separately."""
    user = await users_service.add_user(session, principal, **body.model_dump())
    return UserOut.model_validate(user)


@router.patch("/{user_id}", response_model=UserOut, name="user.update")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, principal: AdminDep
) -> UserOut:
    """Enable or disable an account, or set its password (admin). Disabling takes effect
    on the user's very next request."""
    user = await users_service.get_user(session, principal, user_id)
    if body.is_active is not None:
        await users_service.set_active(session, principal, user, body.is_active)
    if body.password is not None:
        await users_service.set_password(session, principal, user, body.password)
    return UserOut.model_validate(user)


@router.get(
    "/{user_id}/memberships", response_model=list[MembershipOut], name="user.membership.list"
)
async def list_memberships(
    user_id: uuid.UUID, session: SessionDep, principal: AdminDep
) -> list[MembershipOut]:
    """A user's unit memberships (admin)."""
    user = await users_service.get_user(session, principal, user_id)
    return [
        MembershipOut(id=m.id, user_id=m.user_id, unit_id=m.unit_id, unit_code=u.code, role=m.role)
        for m, u in await users_service.user_memberships(session, user.id)
    ]


@router.put("/{user_id}/memberships", response_model=MembershipOut, name="user.membership.put")
async def put_membership(
    user_id: uuid.UUID, body: MembershipCreate, session: SessionDep, principal: AdminDep
) -> MembershipOut:
    """Add a membership, or change the role held in that unit (admin)."""
    user = await users_service.get_user(session, principal, user_id)
    m = await users_service.add_membership(session, principal, user, body.unit_id, body.role)
    unit_code = next(
        u.code for mm, u in await users_service.user_memberships(session, user.id) if mm.id == m.id
    )
    return MembershipOut(
        id=m.id, user_id=m.user_id, unit_id=m.unit_id, unit_code=unit_code, role=m.role
    )


@router.delete("/{user_id}/memberships/{unit_id}", status_code=204, name="user.membership.remove")
async def remove_membership(
    user_id: uuid.UUID, unit_id: uuid.UUID, session: SessionDep, principal: AdminDep
) -> Response:
    """Remove a membership (admin); it stops granting anything on the very next request."""
    user = await users_service.get_user(session, principal, user_id)
    await users_service.remove_membership(session, principal, user, unit_id)
    return Response(status_code=204)
