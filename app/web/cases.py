"""Pages of the web client: cases — the list, opening one, the case page and its forms
(team, tasks, notes, seizures, arrests, closing, reopening, escalation).

Each form posts to its own address, named as the API's route for the same action (the
audit action). Success answers 303 back to the case; a form sent back re-renders the case
page with the error beside the field and what was typed kept.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.concurrency import etag
from app.db import SessionDep
from app.schemas.cases import (
    ArrestIn,
    AssetSeizureIn,
    CaseClose,
    CaseCreate,
    CaseUpdate,
    DrugSeizureIn,
    LinkRecord,
    NoteIn,
    TaskIn,
    TaskUpdate,
    TeamMemberIn,
)
from app.schemas.escalations import EscalationCreate
from app.services import cases as cases_service
from app.services import escalations as escalations_service
from app.services import units as units_service
from app.web.pages import PARIS, allowed, attempt, form_fields, render
from app.web.session import WebPrincipalDep

router = APIRouter()

PAGE_SIZE = 25
# Numbers typed the French way (« 1,5 ») are read as decimals.
DECIMAL_FIELDS = ("quantity", "purity_pct", "estimated_value_eur")


def _case_url(case_id: uuid.UUID, anchor: str = "") -> str:
    return f"/dossiers/{case_id}" + (f"#{anchor}" if anchor else "")


def _decimals(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v.replace(",", ".") if k in DECIMAL_FIELDS else v for k, v in fields.items()}


def _end_of_day(value: str) -> datetime | str:
    """A date typed for an access that lasts « jusqu'au » that day, included: its last
    second in Paris. Left as typed when it is no date (the schema then says so)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return datetime.combine(day, time(23, 59, 59), PARIS)


# --- the list ---------------------------------------------------------------------------


async def _list_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    *,
    q: str = "",
    statut: str = "",
    priorite: str = "",
    cursor: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    cases, next_cursor = await cases_service.search_cases(
        session,
        principal,
        q=q or None,
        status=statut or None,
        priority=priorite or None,
        unit_id=None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    filters = {"q": q, "statut": statut, "priorite": priorite}
    given = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "cases.html",
        {
            "cases": cases,
            "filters": filters,
            "next_cursor": next_cursor,
            "next_query": urlencode({**given, "curseur": next_cursor or ""}),
            "can_open": policy.works_cases(principal),
            "units": {str(m.unit_id): m.unit_code for m in principal.memberships},
            "failed": "create" if errors else None,
            "values": values or {},
            "errors": errors or {},
        },
        status,
    )


@router.get("/dossiers", name="case.search")
async def list_cases(
    request: Request,
    session: SessionDep,
    principal: WebPrincipalDep,
    q: Annotated[str, Query(max_length=200)] = "",
    statut: Annotated[str, Query(max_length=20)] = "",
    priorite: Annotated[str, Query(max_length=20)] = "",
    curseur: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The cases I may see, newest first, filtered by reference or title, status and
    priority, a page at a time; and the form to open one."""
    return await _list_page(
        request, session, principal, q=q.strip(), statut=statut, priorite=priorite, cursor=curseur
    )


@router.post("/dossiers", name="case.create")
async def open_case(request: Request, session: SessionDep, principal: WebPrincipalDep) -> Response:
    """Open a case in my unit (the one chosen when I belong to several), me as its lead;
    then to its page."""
    fields = await form_fields(
        request, ("title", "summary", "priority", "unit_id", "judicial_reference")
    )

    async def act():
        return await cases_service.create_case(session, principal, CaseCreate(**fields))

    case, errors, status = await attempt(session, act)
    if errors:
        return await _list_page(
            request, session, principal, values=fields, errors=errors, status=status
        )
    return RedirectResponse(_case_url(case.id), status_code=303)


# --- the case page ----------------------------------------------------------------------


async def _case_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    *,
    failed: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The case page; with a form sent back (`failed`), its errors and typed values."""
    case = await cases_service.get_case(session, principal, case_id)
    detail = await cases_service.detail(session, principal, case)
    may = {
        "work": await allowed(lambda: policy.check_case_work(session, principal, case)),
        "lead": await allowed(lambda: policy.check_case_lead(session, principal, case)),
        "supervise": await allowed(lambda: policy.check_custody_supervisor(principal, case)),
    }
    escalations = await escalations_service.case_escalations(session, principal, case)
    targets = {}
    if may["supervise"] and case.status == "open":
        for unit_id in await units_service.ancestor_ids(session, case.unit_id):
            unit = await units_service.get_unit(session, unit_id)
            targets[str(unit.id)] = f"{unit.code} — {unit.name}"
    return render(
        request,
        "case.html",
        {
            "case": detail,
            "timeline": await cases_service.timeline(session, principal, case_id),
            "escalations": escalations,
            # Pending escalations this viewer decides (on the queue page).
            "decides": {
                e.id
                for e in escalations
                if e.status == "pending"
                and await allowed(lambda e=e: policy.check_decides(principal, e))
            },
            "persons": [e for e in detail["entities"] if e.data.get("kind") == "person"],
            "usernames": {str(m["user_id"]): m["username"] for m in detail["team"]},
            "may": may,
            "targets": targets,
            "failed": failed,
            "values": values or {},
            "errors": errors or {},
        },
        status,
    )


async def _submit(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    form: str,
    fields: dict[str, Any],
    action: Callable[[], Awaitable[Any]],
) -> Response:
    """Run a form of the case page: back to the case (at the form's section) when done,
    else the page again with the form's errors."""
    _, errors, status = await attempt(session, action)
    if errors:
        return await _case_page(
            request,
            session,
            principal,
            case_id,
            failed=form,
            values=fields,
            errors=errors,
            status=status,
        )
    return RedirectResponse(_case_url(case_id, form.split("-")[0]), status_code=303)


@router.get("/dossiers/{case_id}", name="case.read")
async def read_case(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Dossier: summary, team, linked records (withheld ones as placeholders naming only
    their unit), tasks, notes, seizures, arrests, escalations and timeline, with the forms
    the policy lets me use."""
    return await _case_page(request, session, principal, case_id)


@router.post("/dossiers/{case_id}/modifier", name="case.update")
async def update_case(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Change title, summary, priority or judicial reference of the version I read (a
    change made meanwhile by someone else is refused, not overwritten)."""
    fields = await form_fields(request, ("title", "summary", "priority", "judicial_reference"))
    version = (await request.form()).get("version", "")

    async def act() -> None:
        # Emptied fields are sent as such: a title too short, no summary, no reference.
        body = CaseUpdate(**{"title": "", "summary": "", "judicial_reference": None, **fields})
        await cases_service.update_case(session, principal, case_id, body, etag(version))

    return await _submit(request, session, principal, case_id, "update", fields, act)


@router.post("/dossiers/{case_id}/equipe", name="case.team.put")
async def put_team_member(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Add a colleague of any unit to the team (or change their role or end date), named
    by their identifier."""
    fields = await form_fields(request, ("username", "role", "expires_at"))
    body = {k: v for k, v in fields.items() if k != "username"}
    if "expires_at" in body:
        body["expires_at"] = _end_of_day(body["expires_at"])

    async def act() -> None:
        member = TeamMemberIn(**body)
        user_id = await cases_service.officer_named(
            session, principal, fields.get("username", ""), ["username"]
        )
        await cases_service.put_member(session, principal, case_id, user_id, member)

    return await _submit(request, session, principal, case_id, "team", fields, act)


@router.post("/dossiers/{case_id}/renseignements", name="case.record.link")
async def link_record(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Link a record I can read (by its identifier): the custody units and the team then
    see it, unless its handling withholds it."""
    fields = await form_fields(request, ("record_id",))

    async def act() -> None:
        body = LinkRecord(**fields)
        await cases_service.link_record(session, principal, case_id, body.record_id)

    return await _submit(request, session, principal, case_id, "link", fields, act)


async def _assignee(
    session: AsyncSession, principal: Principal, fields: dict[str, Any]
) -> dict[str, Any]:
    """The task fields with the assignee named by identifier turned into an id."""
    body = {k: v for k, v in fields.items() if k != "assignee"}
    if "assignee" in fields:
        body["assignee_id"] = await cases_service.officer_named(
            session, principal, fields["assignee"], ["assignee"]
        )
    return body


@router.post("/dossiers/{case_id}/taches", name="case.task.add")
async def add_task(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Add a task, assigned or not (the assignee is notified)."""
    fields = await form_fields(request, ("title", "assignee", "due_on"))

    async def act() -> None:
        body = TaskIn(**await _assignee(session, principal, fields))
        await cases_service.add_task(session, principal, case_id, body)

    return await _submit(request, session, principal, case_id, "task", fields, act)


@router.post("/dossiers/{case_id}/taches/{task_id}", name="case.task.update")
async def update_task(
    case_id: uuid.UUID,
    task_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: WebPrincipalDep,
) -> Response:
    """Change a task's status (à faire, en cours, terminée)."""
    fields = await form_fields(request, ("status",))

    async def act() -> None:
        body = TaskUpdate(**fields)
        await cases_service.update_task(session, principal, case_id, task_id, body)

    return await _submit(request, session, principal, case_id, f"tasks-{task_id}", fields, act)


@router.post("/dossiers/{case_id}/notes", name="case.note.add")
async def add_note(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Add a note to the case."""
    fields = await form_fields(request, ("body",))

    async def act() -> None:
        await cases_service.add_note(session, principal, case_id, NoteIn(**fields).body)

    return await _submit(request, session, principal, case_id, "note", fields, act)


@router.post("/dossiers/{case_id}/saisies/stupefiants", name="case.drug_seizure.add")
async def add_drug_seizure(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Record a drug seizure: substance, quantity in kg, g, tablets, doses or plants,
    purity, place, date."""
    fields = await form_fields(
        request, ("substance", "quantity", "quantity_unit", "purity_pct", "place", "seized_on")
    )

    async def act() -> None:
        body = DrugSeizureIn(**_decimals(fields))
        await cases_service.add_drug_seizure(session, principal, case_id, body)

    return await _submit(request, session, principal, case_id, "drugs", fields, act)


@router.post("/dossiers/{case_id}/saisies/avoirs", name="case.asset_seizure.add")
async def add_asset_seizure(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Record an asset seizure: category, estimated value in euros, AGRASC reference."""
    fields = await form_fields(
        request,
        ("category", "estimated_value_eur", "agrasc_reference", "description", "seized_on"),
    )

    async def act() -> None:
        body = AssetSeizureIn(**_decimals(fields))
        await cases_service.add_asset_seizure(session, principal, case_id, body)

    return await _submit(request, session, principal, case_id, "assets", fields, act)


@router.post("/dossiers/{case_id}/interpellations", name="case.arrest.add")
async def add_arrest(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Record arrests: how many, when, and which persons of the case."""
    fields = await form_fields(request, ("count", "arrested_on"), repeated=("person_entity_ids",))

    async def act() -> None:
        await cases_service.add_arrest(session, principal, case_id, ArrestIn(**fields))

    return await _submit(request, session, principal, case_id, "arrests", fields, act)


@router.post("/dossiers/{case_id}/cloture", name="case.close")
async def close_case(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Close the case with its outcome and a note (custody supervisors and the lead)."""
    fields = await form_fields(request, ("outcome", "note"))

    async def act() -> None:
        body = CaseClose(**fields)
        await cases_service.close_case(session, principal, case_id, body.outcome, body.note)

    return await _submit(request, session, principal, case_id, "close", fields, act)


@router.post("/dossiers/{case_id}/reouverture", name="case.reopen")
async def reopen_case(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Reopen a closed case (custody supervisors)."""

    async def act() -> None:
        await cases_service.reopen_case(session, principal, case_id)

    return await _submit(request, session, principal, case_id, "reopen", {}, act)


@router.post("/dossiers/{case_id}/escalade", name="case.escalate")
async def escalate(
    case_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Escalate the case to a unit above (by default the parent) with the reason and a
    priority, which sets the review deadline (custody supervisors)."""
    fields = await form_fields(request, ("justification", "priority", "to_unit_id"))

    async def act() -> None:
        body = EscalationCreate(**fields)
        await escalations_service.escalate(
            session,
            principal,
            request.app.state.settings,
            case_id,
            body.to_unit_id,
            body.justification,
            body.priority,
        )

    return await _submit(request, session, principal, case_id, "escalate", fields, act)
