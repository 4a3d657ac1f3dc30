"""The review queue and decisions on escalations."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.schemas.escalations import Decision, EscalationOut, EscalationPage, EscalationStatus
from app.services import escalations as escalations_service

router = APIRouter(prefix="/escalations", tags=["escalations"])


@router.get("", response_model=EscalationPage, name="escalation.queue")
async def review_queue(
    session: SessionDep,
    principal: PrincipalDep,
    status: EscalationStatus | None = None,
    include_descendants: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> EscalationPage:
    """Escalations addressed to the units the caller supervises (`status=pending` is the
    review queue; a case's own escalations are at `/cases/{id}/escalations`), most urgent
    then oldest first,
    each with `due_at` and `overdue`. `include_descendants=true` lets supervisors of a
    national unit (OFAST) see the queues of every unit below."""
    items, next_cursor = await escalations_service.queue(
        session,
        principal,
        status=status,
        include_descendants=include_descendants,
        limit=limit,
        cursor=cursor,
    )
    return EscalationPage(items=items, next_cursor=next_cursor)


@router.get("/{escalation_id}", response_model=EscalationOut, name="escalation.read")
async def get_escalation(
    escalation_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> EscalationOut:
    """One escalation of a case the caller may see."""
    return await escalations_service.get_escalation(session, principal, escalation_id)


@router.post("/{escalation_id}/decision", response_model=EscalationOut, name="escalation.decide")
async def decide(
    escalation_id: uuid.UUID, body: Decision, session: SessionDep, principal: PrincipalDep
) -> EscalationOut:
    """Decide a pending escalation (a supervisor of the target unit): `accept` moves
    custody to the target unit (the origin keeps access), `return` sends it back for more
    information, `decline` refuses it; the origin is notified. Concurrent decisions: one
    wins, the others get 409."""
    escalation = await escalations_service.decide(
        session, principal, escalation_id, body.decision, body.note
    )
    return await escalations_service.decided(session, escalation)
