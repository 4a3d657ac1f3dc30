"""The audit trail, for auditors: events and anomalies."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.errors import invalid_field
from app.schemas.audit import AnomalyReport, AuditPage
from app.services import audit as audit_service

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/events", response_model=AuditPage, name="audit.events")
async def audit_events(
    session: SessionDep,
    principal: PrincipalDep,
    actor_id: uuid.UUID | None = None,
    unit_id: uuid.UUID | None = None,
    action: Annotated[
        str | None, Query(max_length=60, description="`record.read`, or `record.` for all")
    ] = None,
    object_type: Annotated[str | None, Query(max_length=30)] = None,
    object_id: Annotated[str | None, Query(max_length=80)] = None,
    outcome: Literal["success", "denied", "failure"] | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> AuditPage:
    """The audit trail, newest first (auditors only): every read, search, write,
    download, escalation step, grant, sign-in and admin change, and every denial — who,
    acting for which unit and agency, what, on which object, when, from where, the
    purpose given, the outcome."""
    filters = audit_service.EventFilters(
        actor_id=actor_id,
        unit_id=unit_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    items, next_cursor = await audit_service.list_events(
        session, principal, filters, limit=limit, cursor=cursor
    )
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get("/anomalies", response_model=AnomalyReport, name="audit.anomalies")
async def audit_anomalies(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> AnomalyReport:
    """What deserves an auditor's look in a period (default: the last 7 days): users
    reading and searching far more than their unit's other members, activity outside
    06:00–22:00 local time, bursts of denials, selector and person searches without a
    case reference as purpose."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=7)
    if since >= until:
        raise invalid_field(["query", "from"], "must be before `to`")
    found = await audit_service.anomalies(
        session, principal, request.app.state.settings, since, until
    )
    return AnomalyReport(since=since, until=until, anomalies=found)
