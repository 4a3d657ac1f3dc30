"""Planned operations and their conflicts with other units' operations."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from app.auth.principal import PrincipalDep
from app.concurrency import etag
from app.db import SessionDep
from app.schemas.operations import OperationCreate, OperationOut, OperationPage, OperationUpdate
from app.services import operations as operations_service

router = APIRouter(prefix="/operations", tags=["operations"])


@router.post("", response_model=OperationOut, status_code=201, name="operation.create")
async def plan_operation(
    body: OperationCreate, response: Response, session: SessionDep, principal: PrincipalDep
) -> OperationOut:
    """Plan an operation (officers and supervisors of the unit): search, surveillance,
    controlled delivery, arrest or undercover, with its window and a circle (`lat`,
    `lon`, `radius_m`). The answer lists the conflicts: other units' planned operations
    whose windows overlap (touching windows do not) and whose circles intersect — their
    unit, contact, kind, window and distance, nothing of their case. Both sides are
    alerted at once."""
    op = await operations_service.create_operation(session, principal, body)
    response.headers["ETag"] = etag(op.version)
    return await operations_service.operation_out(session, op)


@router.get("", response_model=OperationPage, name="operation.list")
async def list_operations(
    session: SessionDep,
    principal: PrincipalDep,
    include_past: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> OperationPage:
    """The operations of the caller's units, soonest first (by default only planned ones
    not yet over), each with its current conflicts."""
    items, next_cursor = await operations_service.list_operations(
        session, principal, include_past=include_past, limit=limit, cursor=cursor
    )
    return OperationPage(items=items, next_cursor=next_cursor)


@router.get("/{operation_id}", response_model=OperationOut, name="operation.read")
async def get_operation(
    operation_id: uuid.UUID, response: Response, session: SessionDep, principal: PrincipalDep
) -> OperationOut:
    """One of the caller's units' operations, with its conflicts and ETag."""
    op = await operations_service.visible_operation(session, principal, operation_id)
    response.headers["ETag"] = etag(op.version)
    return await operations_service.operation_out(session, op)


@router.patch("/{operation_id}", response_model=OperationOut, name="operation.update")
async def update_operation(
    operation_id: uuid.UUID,
    body: OperationUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: Annotated[str | None, Header()] = None,
) -> OperationOut:
    """Change the window, place or kind (If-Match required); conflicts are checked again:
    new ones alert both sides, lifted ones are announced."""
    op = await operations_service.update_operation(session, principal, operation_id, body, if_match)
    response.headers["ETag"] = etag(op.version)
    return await operations_service.operation_out(session, op)


@router.post("/{operation_id}/cancel", response_model=OperationOut, name="operation.cancel")
async def cancel_operation(
    operation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> OperationOut:
    """Cancel the operation; the units it conflicted with are told."""
    op = await operations_service.cancel_operation(session, principal, operation_id)
    return await operations_service.operation_out(session, op)
