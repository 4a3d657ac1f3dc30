"""The unit tree, and its management by platform admins."""

import uuid

from fastapi import APIRouter

from app.auth.principal import AdminDep
from app.db import SessionDep
from app.schemas.units import UnitCreate, UnitNode, UnitOut, UnitUpdate
from app.services import units as units_service

router = APIRouter(tags=["units"])


@router.get("/units", response_model=list[UnitNode], name="unit.tree")
async def unit_tree(session: SessionDep) -> list[UnitNode]:
    """The whole unit tree: OFAST and its poles, antennes, détachements and CROSS."""
    units = await units_service.list_units(session)
    nodes = {u.id: UnitNode.model_validate(u) for u in units}
    roots: list[UnitNode] = []
    for unit in units:
        node = nodes[unit.id]
        if unit.parent_id is None or unit.parent_id not in nodes:
            roots.append(node)
        else:
            nodes[unit.parent_id].children.append(node)
    return roots


@router.get("/units/{unit_id}", response_model=UnitOut, name="unit.read")
async def get_unit(unit_id: uuid.UUID, session: SessionDep) -> UnitOut:
    """One unit."""
    return UnitOut.model_validate(await units_service.get_unit(session, unit_id))


@router.post("/admin/units", response_model=UnitOut, status_code=201, name="unit.create")
async def create_unit(body: UnitCreate, session: SessionDep, principal: AdminDep) -> UnitOut:
    """Create a unit (admin). Its kind must fit under its parent's kind."""
    unit = await units_service.create_unit(session, principal, **body.model_dump())
    return UnitOut.model_validate(unit)


@router.patch("/admin/units/{unit_id}", response_model=UnitOut, name="unit.update")
async def update_unit(
    unit_id: uuid.UUID, body: UnitUpdate, session: SessionDep, principal: AdminDep
) -> UnitOut:
    """Rename a unit (admin)."""
    return UnitOut.model_validate(
        await units_service.rename_unit(session, principal, unit_id, body.name)
    )
