"""Pages of the web client: units."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.db import SessionDep
from app.services import units as units_service
from app.web.pages import render
from app.web.session import WebPrincipalDep

router = APIRouter()


@router.get("/unites", name="unit.tree")
async def unit_tree(
    request: Request, session: SessionDep, principal: WebPrincipalDep
) -> HTMLResponse:
    """Unités: the tree of units — OFAST, its poles, antennes, détachements and CROSS —
    mine marked with my role there."""
    children: dict = {}
    for unit in await units_service.list_units(session):
        children.setdefault(unit.parent_id, []).append(unit)
    return render(
        request,
        "units.html",
        {
            "children": children,
            "mine": {m.unit_id: m.role for m in principal.memberships},
        },
    )
