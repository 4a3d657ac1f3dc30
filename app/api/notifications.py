"""The caller's in-app notifications: list, mark read. Only the recipient ever sees one."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.schemas.notifications import NotificationOut, NotificationPage, ReadAllOut
from app.services import notifications as notifications_service

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=NotificationPage, name="notification.list")
async def list_notifications(
    session: SessionDep,
    principal: PrincipalDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> NotificationPage:
    """The caller's notifications, newest first, by cursor; `unread=true` keeps the unread
    ones. Service clients receive no notifications: their list is always empty. This list
    is the reference; the live stream (`/api/v1/events`) only announces new entries."""
    items, next_cursor = await notifications_service.list_notifications(
        session, principal, unread_only=unread, limit=limit, cursor=cursor
    )
    return NotificationPage(
        items=[NotificationOut.model_validate(n) for n in items], next_cursor=next_cursor
    )


@router.post("/read-all", response_model=ReadAllOut, name="notification.read_all")
async def mark_all_read(session: SessionDep, principal: PrincipalDep) -> ReadAllOut:
    """Mark every unread notification of the caller read; answers how many were."""
    return ReadAllOut(marked_read=await notifications_service.mark_all_read(session, principal))


@router.post("/{notification_id}/read", response_model=NotificationOut, name="notification.read")
async def mark_read(
    notification_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> NotificationOut:
    """Mark one of the caller's notifications read (again: no change, the first reading
    time is kept). 404 for a notification addressed to someone else."""
    notification = await notifications_service.mark_read(session, principal, notification_id)
    return NotificationOut.model_validate(notification)
