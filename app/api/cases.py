"""Cases: open, read, change, list, team, links, tasks, notes, seizures, arrests, close,
reopen, escalate, delegate, timeline. A case the caller may not see answers 404."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from app.auth.principal import PrincipalDep
from app.concurrency import etag
from app.db import SessionDep
from app.schemas.cases import (
    ArrestIn,
    ArrestOut,
    AssetSeizureIn,
    AssetSeizureOut,
    CaseClose,
    CaseCreate,
    CaseOut,
    CasePage,
    CaseStatus,
    CaseUpdate,
    Delegation,
    DrugSeizureIn,
    DrugSeizureOut,
    EntityIn,
    EntityOut,
    LinkRecord,
    NoteIn,
    NoteOut,
    Priority,
    TaskIn,
    TaskOut,
    TaskUpdate,
    TeamMemberIn,
    TimelineEvent,
)
from app.schemas.escalations import EscalationCreate, EscalationOut
from app.services import cases as cases_service
from app.services import escalations as escalations_service

router = APIRouter(prefix="/cases", tags=["cases"])


async def _out(session, principal, case, response: Response | None = None) -> CaseOut:
    if response is not None:
        response.headers["ETag"] = etag(case.version)
    return CaseOut(**await cases_service.detail(session, principal, case))


@router.post("", response_model=CaseOut, status_code=201, name="case.create")
async def open_case(
    body: CaseCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> CaseOut:
    """Open a case in the caller's unit (officers and supervisors), with a reference
    sequential per unit and year (`CROSS13-2026-0042`); the caller leads it unless
    `lead_user_id` names someone else."""
    case = await cases_service.create_case(session, principal, body)
    response.headers["Location"] = str(request.url_for("case.read", case_id=case.id))
    return await _out(session, principal, case, response)


@router.get("", response_model=CasePage, name="case.search")
async def list_cases(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    status: CaseStatus | None = None,
    priority: Priority | None = None,
    unit_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> CasePage:
    """The cases the caller may see, newest first; `q` matches reference or title."""
    items, next_cursor = await cases_service.search_cases(
        session,
        principal,
        q=q,
        status=status,
        priority=priority,
        unit_id=unit_id,
        limit=limit,
        cursor=cursor,
    )
    return CasePage(items=items, next_cursor=next_cursor)


@router.get("/{case_id}", response_model=CaseOut, name="case.read")
async def get_case(
    case_id: uuid.UUID, response: Response, session: SessionDep, principal: PrincipalDep
) -> CaseOut:
    """A case with its team, linked records (withheld ones as placeholders naming only
    the origin unit), entities, tasks, notes, seizures and arrests; with its ETag."""
    case = await cases_service.get_case(session, principal, case_id)
    return await _out(session, principal, case, response)


@router.patch("/{case_id}", response_model=CaseOut, name="case.update")
async def update_case(
    case_id: uuid.UUID,
    body: CaseUpdate,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: Annotated[str | None, Header()] = None,
) -> CaseOut:
    """Change title, summary, priority, lead or judicial reference. Requires If-Match
    (428 without, 412 when stale); the timeline keeps before and after."""
    case = await cases_service.update_case(session, principal, case_id, body, if_match)
    return await _out(session, principal, case, response)


@router.get("/{case_id}/timeline", response_model=list[TimelineEvent], name="case.timeline")
async def case_timeline(
    case_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[TimelineEvent]:
    """Every change of the case, oldest first: who, what, when, before/after."""
    return [
        TimelineEvent.model_validate(e)
        for e in await cases_service.timeline(session, principal, case_id)
    ]


@router.put("/{case_id}/team/{user_id}", status_code=204, name="case.team.put")
async def put_team_member(
    case_id: uuid.UUID,
    user_id: uuid.UUID,
    body: TeamMemberIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    """Add a team member from any unit, or change their role or `expires_at` (after which
    their access ends). Custody supervisors and the lead."""
    await cases_service.put_member(session, principal, case_id, user_id, body)
    return Response(status_code=204)


@router.delete("/{case_id}/team/{user_id}", status_code=204, name="case.team.remove")
async def remove_team_member(
    case_id: uuid.UUID, user_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Remove a team member (not the lead)."""
    await cases_service.remove_member(session, principal, case_id, user_id)
    return Response(status_code=204)


@router.post("/{case_id}/records", status_code=204, name="case.record.link")
async def link_record(
    case_id: uuid.UUID, body: LinkRecord, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Link a record the caller can read. The case's custody units and team then see it,
    except records whose handling forbids it (H2, agency scope across agencies)."""
    await cases_service.link_record(session, principal, case_id, body.record_id)
    return Response(status_code=204)


@router.post(
    "/{case_id}/entities", response_model=EntityOut, status_code=201, name="case.entity.add"
)
async def add_entity(
    case_id: uuid.UUID,
    body: EntityIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> EntityOut:
    """Link an entity (person, phone, vehicle…), validated as in records. Its selectors
    are matched at once against every other holder: see /deconfliction/hits."""
    item = await cases_service.add_entity(
        session, principal, request.app.state.settings, case_id, body.entity
    )
    return EntityOut(id=item.id, data=item.data, added_by=item.added_by, created_at=item.created_at)


@router.post("/{case_id}/tasks", response_model=TaskOut, status_code=201, name="case.task.add")
async def add_task(
    case_id: uuid.UUID, body: TaskIn, session: SessionDep, principal: PrincipalDep
) -> TaskOut:
    """Add a task; its assignee (custody unit or team member) is notified."""
    return TaskOut.model_validate(await cases_service.add_task(session, principal, case_id, body))


@router.patch("/{case_id}/tasks/{task_id}", response_model=TaskOut, name="case.task.update")
async def update_task(
    case_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
    session: SessionDep,
    principal: PrincipalDep,
) -> TaskOut:
    """Change a task (status todo | doing | done, assignee, due date, title)."""
    return TaskOut.model_validate(
        await cases_service.update_task(session, principal, case_id, task_id, body)
    )


@router.post("/{case_id}/notes", response_model=NoteOut, status_code=201, name="case.note.add")
async def add_note(
    case_id: uuid.UUID, body: NoteIn, session: SessionDep, principal: PrincipalDep
) -> NoteOut:
    """Add a note to the case."""
    return NoteOut.model_validate(
        await cases_service.add_note(session, principal, case_id, body.body)
    )


@router.post(
    "/{case_id}/seizures/drugs",
    response_model=DrugSeizureOut,
    status_code=201,
    name="case.drug_seizure.add",
)
async def add_drug_seizure(
    case_id: uuid.UUID, body: DrugSeizureIn, session: SessionDep, principal: PrincipalDep
) -> DrugSeizureOut:
    """Record a drug seizure: EUDA substance, quantity (> 0) in kg | g | tablets | doses |
    plants, optional purity %, place, date."""
    return DrugSeizureOut.model_validate(
        await cases_service.add_drug_seizure(session, principal, case_id, body)
    )


@router.post(
    "/{case_id}/seizures/assets",
    response_model=AssetSeizureOut,
    status_code=201,
    name="case.asset_seizure.add",
)
async def add_asset_seizure(
    case_id: uuid.UUID, body: AssetSeizureIn, session: SessionDep, principal: PrincipalDep
) -> AssetSeizureOut:
    """Record an asset seizure: category, estimated value in EUR, AGRASC reference."""
    return AssetSeizureOut.model_validate(
        await cases_service.add_asset_seizure(session, principal, case_id, body)
    )


@router.post(
    "/{case_id}/arrests", response_model=ArrestOut, status_code=201, name="case.arrest.add"
)
async def add_arrest(
    case_id: uuid.UUID, body: ArrestIn, session: SessionDep, principal: PrincipalDep
) -> ArrestOut:
    """Record arrests: how many, the person entities of the case concerned, the date."""
    return ArrestOut.model_validate(
        await cases_service.add_arrest(session, principal, case_id, body)
    )


@router.post("/{case_id}/close", response_model=CaseOut, name="case.close")
async def close_case(
    case_id: uuid.UUID,
    body: CaseClose,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> CaseOut:
    """Close an open case with its outcome (judicial_referral | transferred |
    no_further_action | merged) and a note. Custody supervisors and the lead."""
    case = await cases_service.close_case(session, principal, case_id, body.outcome, body.note)
    return await _out(session, principal, case, response)


@router.post("/{case_id}/reopen", response_model=CaseOut, name="case.reopen")
async def reopen_case(
    case_id: uuid.UUID, response: Response, session: SessionDep, principal: PrincipalDep
) -> CaseOut:
    """Reopen a closed case (a supervisor of the custody unit)."""
    case = await cases_service.reopen_case(session, principal, case_id)
    return await _out(session, principal, case, response)


@router.post(
    "/{case_id}/escalations", response_model=EscalationOut, status_code=201, name="case.escalate"
)
async def escalate(
    case_id: uuid.UUID,
    body: EscalationCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> EscalationOut:
    """Escalate the case to a unit above (default: the parent) for review, by a supervisor
    of the custody unit; one pending escalation per case (409 otherwise). The review
    deadline follows the priority (urgent 24 h, high 72 h, routine 7 days by default)."""
    escalation = await escalations_service.escalate(
        session,
        principal,
        request.app.state.settings,
        case_id,
        body.to_unit_id,
        body.justification,
        body.priority,
    )
    return await escalations_service.get_escalation(session, principal, escalation.id)


@router.get("/{case_id}/escalations", response_model=list[EscalationOut], name="case.escalations")
async def case_escalations(
    case_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> list[EscalationOut]:
    """The case's escalations, oldest first."""
    case = await cases_service.get_case(session, principal, case_id)
    return await escalations_service.case_escalations(session, principal, case)


@router.post("/{case_id}/delegate", response_model=CaseOut, name="case.delegate")
async def delegate(
    case_id: uuid.UUID,
    body: Delegation,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> CaseOut:
    """Hand the case down to a unit below the custody unit (a supervisor of the custody
    unit); the delegating unit keeps access."""
    case = await cases_service.delegate(session, principal, case_id, body.to_unit_id, body.note)
    return await _out(session, principal, case, response)
