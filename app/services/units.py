"""The unit tree: reading it, and its management by platform admins."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Problem, conflict, forbidden, invalid_field, not_found
from app.models import Unit
from app.services import audit

# Which kind of unit may sit under which: the tree of DESIGN §1.
ALLOWED_PARENTS = {
    "national": (None,),
    "pole": ("national",),
    "antenne": ("national",),
    "detachement": ("national", "antenne"),
    "cross": ("antenne", "detachement"),
}


async def list_units(session: AsyncSession) -> list[Unit]:
    return list((await session.scalars(select(Unit).order_by(Unit.code))).all())


async def get_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise not_found("unit")
    return unit


async def unit_by_code(session: AsyncSession, code: str) -> Unit:
    unit = await session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise Problem(404, "not_found", "Not found", f"No unit with code {code!r}.")
    return unit


async def ancestor_ids(session: AsyncSession, unit_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids above a unit, nearest first."""
    result: list[uuid.UUID] = []
    parent = await session.scalar(select(Unit.parent_id).where(Unit.id == unit_id))
    while parent is not None:
        result.append(parent)
        parent = await session.scalar(select(Unit.parent_id).where(Unit.id == parent))
    return result


async def _check_parent(session: AsyncSession, kind: str, parent_id: uuid.UUID | None) -> None:
    parent_kind = None
    if parent_id is not None:
        parent = await session.get(Unit, parent_id)
        if parent is None:
            raise invalid_field(["body", "parent_id"], "no such unit")
        parent_kind = parent.kind
    if parent_kind not in ALLOWED_PARENTS[kind]:
        raise invalid_field(
            ["body", "parent_id"], f"a {kind} cannot sit under a {parent_kind or 'no parent'}"
        )


async def create_unit(
    session: AsyncSession,
    principal: Principal,
    *,
    code: str,
    name: str,
    kind: str,
    parent_id: uuid.UUID | None,
    departement: str | None,
) -> Unit:
    if not principal.is_admin:
        raise forbidden("Only platform administrators manage units.")
    await _check_parent(session, kind, parent_id)
    if kind == "national" and await session.scalar(select(Unit.id).where(Unit.kind == "national")):
        raise invalid_field(["body", "kind"], "there is one national unit (the root of the tree)")
    if (kind == "cross") != (departement is not None):
        raise invalid_field(["body", "departement"], "required for a CROSS and only for a CROSS")
    unit = Unit(code=code, name=name, kind=kind, parent_id=parent_id, departement=departement)
    session.add(unit)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict("unit_exists", f"A unit with code {code!r} already exists.") from exc
    audit.note(session, object_type="unit", object_id=unit.id, code=code)
    return unit


async def rename_unit(
    session: AsyncSession, principal: Principal, unit_id: uuid.UUID, name: str
) -> Unit:
    if not principal.is_admin:
        raise forbidden("Only platform administrators manage units.")
    unit = await get_unit(session, unit_id)
    unit.name = name
    audit.note(session, object_type="unit", object_id=unit.id, name=name)
    return unit
