"""Pages of the web client: the review queue of escalations and their decisions.

A supervisor of an intermediate unit (an antenne) may pass an escalation on: the page's
« Transmettre à l'échelon supérieur » accepts it (custody moves to the antenne, as the
API's `accept` does) and, in the same transaction, escalates the case from there to the
next unit up, with the supervisor's observations as justification and the same priority.
"""

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.db import SessionDep
from app.schemas.escalations import Decision
from app.services import escalations as escalations_service
from app.services import units as units_service
from app.web.pages import DECISION_HELP, DECISIONS, FORWARD, attempt, form_fields, render
from app.web.session import WebPrincipalDep

router = APIRouter()

PAGE_SIZE = 50
# The statuses the queue may be filtered on; "" shows them all.
SHOWN = ("pending", "accepted", "returned", "declined", "")


def _decisions(onward: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """The decision radios of one escalation and their explanations: « transmettre » only
    where there is a level above the unit it is addressed to (named with it)."""
    choices = {
        value: f"{text} ({onward})" if value == FORWARD else text
        for value, text in DECISIONS.items()
        if value != FORWARD or onward
    }
    return choices, {value: DECISION_HELP[value].format(unit=onward) for value in choices}


async def _queue_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    status: str = "pending",
    below: bool = False,
    cursor: str | None = None,
    failed: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    code: int = 200,
) -> Response:
    own = policy.supervised_unit_ids(principal)
    oversees = bool(own) and set(
        await policy.review_unit_ids(session, principal, include_descendants=True)
    ) != set(own)
    items, next_cursor = await escalations_service.queue(
        session,
        principal,
        status=status or None,
        include_descendants=below and oversees,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    # Where « transmettre » sends each target unit's escalations: its parent, if any.
    onward: dict[uuid.UUID, str] = {}
    for unit_id in {e.to_unit_id for e in items if e.status == "pending"}:
        above = await units_service.ancestor_ids(session, unit_id)
        if above:
            onward[unit_id] = (await units_service.get_unit(session, above[0])).code
    given = {"statut": status, **({"sous": "1"} if below else {})}
    confirmed = request.query_params.get("decision")
    return render(
        request,
        "escalations.html",
        {
            "items": items,
            "reviews": bool(own),
            "oversees": oversees,
            "status": status,
            "below": below,
            "decisions": {
                e.id: _decisions(onward.get(e.to_unit_id)) for e in items if e.status == "pending"
            },
            "next_cursor": next_cursor,
            "next_query": urlencode({**given, "curseur": next_cursor or ""}),
            "confirmed": confirmed if confirmed in DECISIONS else None,
            "confirmed_reference": request.query_params.get("dossier", "")[:40],
            "failed": failed,
            "values": values or {},
            "errors": errors or {},
        },
        code,
    )


@router.get("/escalades", name="escalation.queue")
async def review_queue(
    request: Request,
    session: SessionDep,
    principal: WebPrincipalDep,
    statut: Annotated[str, Query(max_length=20)] = "pending",
    sous: Annotated[bool, Query()] = False,
    curseur: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """File d'escalade: the escalations addressed to the units I supervise (with `sous`,
    for national supervisors, to every unit below), most urgent then oldest first, overdue
    ones flagged, each pending one with its decision form."""
    return await _queue_page(
        request,
        session,
        principal,
        status=statut if statut in SHOWN else "pending",
        below=sous,
        cursor=curseur,
    )


@router.post("/escalades/{escalation_id}/decision", name="escalation.decide")
async def decide(
    escalation_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Decide a pending escalation addressed to my unit: accept it, pass it on to the
    level above (accept, then escalate from my unit), return it for more information, or
    decline it; back to the queue with a confirmation."""
    fields = await form_fields(request, ("decision", "note"))
    forward = fields.get("decision") == FORWARD

    async def act():
        body = Decision(**({**fields, "decision": "accept"} if forward else fields))
        if forward:
            escalation = await escalations_service.pass_on(
                session, principal, request.app.state.settings, escalation_id, body.note
            )
        else:
            escalation = await escalations_service.decide(
                session, principal, escalation_id, body.decision, body.note
            )
        return await escalations_service.decided(session, escalation)

    decided, errors, code = await attempt(session, act)
    if errors:
        return await _queue_page(
            request,
            session,
            principal,
            failed=f"decide-{escalation_id}",
            values=fields,
            errors=errors,
            code=code,
        )
    query = urlencode({"decision": fields["decision"], "dossier": decided.case_reference})
    return RedirectResponse(f"/escalades?{query}", status_code=303)
