"""Cases: creation with sequential references, changes with optimistic concurrency, team,
record and entity links, tasks, notes, seizures, arrests, closing, delegation, timeline.
Every query starts from the policy's case filter."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Select,
    delete,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.concurrency import check_if_match
from app.errors import Problem, invalid_field, not_found
from app.models import (
    Arrest,
    AssetSeizure,
    Case,
    CaseCounter,
    CaseEntity,
    CaseEvent,
    CaseMember,
    CaseNote,
    CaseRecord,
    CaseSelector,
    CaseTask,
    DrugSeizure,
    Membership,
    Record,
    RecordGrant,
    Unit,
    User,
)
from app.pagination import decode_cursor, page
from app.schemas.cases import (
    ArrestIn,
    AssetSeizureIn,
    CaseCreate,
    CaseSummary,
    CaseUpdate,
    DrugSeizureIn,
    LinkedRecord,
    TaskIn,
    TaskUpdate,
    TeamMemberIn,
)
from app.schemas.entities import Entity
from app.services import audit, deconfliction, notifications
from app.services.entities import selectors
from app.services.records import summaries
from app.settings import Settings

EDITABLE = ("title", "summary", "priority", "lead_user_id", "judicial_reference")


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID | datetime) else value


async def _workable_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    """The case, locked for the change, if the caller may work it (404 / 403 / 409)."""
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    await policy.check_case_work(session, principal, case)
    return case


def log(
    session: AsyncSession, principal: Principal, case: Case, action: str, **details: Any
) -> None:
    """Add a line to the case's timeline."""
    session.add(
        CaseEvent(
            case_id=case.id,
            actor=principal.name,
            action=action,
            details={k: _json(v) for k, v in details.items()},
        )
    )


async def unit_code(session: AsyncSession, unit_id: uuid.UUID) -> str:
    return await session.scalar(select(Unit.code).where(Unit.id == unit_id))


async def supervisors_of(session: AsyncSession, unit_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        (
            await session.scalars(
                select(Membership.user_id)
                .join(User, User.id == Membership.user_id)
                .where(
                    Membership.unit_id == unit_id, Membership.role == "supervisor", User.is_active
                )
            )
        ).all()
    )


async def _next_reference(session: AsyncSession, unit_id: uuid.UUID) -> str:
    """`CROSS13-2026-0042`: sequential per unit and year. The counter row is upserted and
    locked in one statement, so concurrent creations never share a number."""
    year = datetime.now(UTC).year
    number = await session.scalar(
        insert(CaseCounter)
        .values(unit_id=unit_id, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["unit_id", "year"], set_={"last": CaseCounter.last + 1}
        )
        .returning(CaseCounter.last)
    )
    code = (await unit_code(session, unit_id)).replace("-", "")
    return f"{code}-{year}-{number:04d}"


def _active_officer(user: User | None, loc: list[str]) -> User:
    """An active account that works intelligence (platform admins and auditors do not);
    422 on `loc` otherwise."""
    if user is None or not user.is_active or user.platform_roles:
        raise invalid_field(loc, "no such active officer")
    return user


async def _officer(session: AsyncSession, user_id: uuid.UUID, loc: list[str]) -> User:
    return _active_officer(await session.get(User, user_id), loc)


async def officer_named(
    session: AsyncSession, principal: Principal, username: str, loc: list[str]
) -> uuid.UUID:
    """The id of the active officer with this username, for a form that names a colleague
    (web client: team member, task assignee); 422 on `loc` when there is none. Only those
    who work cases may look colleagues up by name (403)."""
    if not policy.works_cases(principal):
        raise Problem(403, "forbidden", "Forbidden", "Only unit members work cases.")
    user = await session.scalar(select(User).where(User.username == username.strip()))
    return _active_officer(user, loc).id


async def create_case(session: AsyncSession, principal: Principal, body: CaseCreate) -> Case:
    """Open a case in the caller's unit (or the unit named, when a member of several);
    the caller is the lead unless another is named."""
    if not policy.works_cases(principal):
        raise Problem(403, "forbidden", "Forbidden", "Only unit members open cases.")
    unit_id = policy.filing_unit(principal, body.unit_id)
    if principal.role_in(unit_id) not in ("officer", "supervisor"):
        raise Problem(403, "forbidden", "Forbidden", "Only officers and supervisors open cases.")
    lead = body.lead_user_id or principal.id
    if body.lead_user_id:
        await _officer(session, lead, ["body", "lead_user_id"])
    case = Case(
        id=uuid.uuid4(),
        reference=await _next_reference(session, unit_id),
        unit_id=unit_id,
        lead_user_id=lead,
        title=body.title,
        summary=body.summary,
        priority=body.priority,
        status="open",
        judicial_reference=body.judicial_reference,
        version=1,
        created_by=principal.name,
        custodian_unit_ids=[unit_id],
    )
    session.add(case)
    await session.flush()
    session.add(CaseMember(case_id=case.id, user_id=lead, role="lead", added_by=principal.name))
    log(
        session,
        principal,
        case,
        "created",
        reference=case.reference,
        title=case.title,
        priority=case.priority,
        unit=await unit_code(session, unit_id),
    )
    await session.flush()
    if lead != principal.id:
        await notifications.notify(
            session,
            [lead],
            "case_assigned",
            f"Vous êtes chef d'enquête du dossier {case.reference}",
            case.title,
            case_id=case.id,
        )
    audit.note(session, object_id=case.id, unit_id=case.unit_id)
    return case


async def get_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    return await policy.visible_case(session, principal, case_id)


def _touch(case: Case) -> None:
    case.version += 1
    case.updated_at = datetime.now(UTC)


async def update_case(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    body: CaseUpdate,
    if_match: str | None,
) -> Case:
    """Change a case's fields (If-Match required); the timeline keeps before and after."""
    case = await _workable_case(session, principal, case_id)
    check_if_match(case.version, if_match, "case")
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k in EDITABLE}
    if changes.get("lead_user_id"):
        await policy.check_case_lead(session, principal, case)
        await _officer(session, changes["lead_user_id"], ["body", "lead_user_id"])
    diff = {}
    for field, value in changes.items():
        if value is None and field != "judicial_reference":
            continue
        before = getattr(case, field)
        if before != value:
            diff[field] = {"before": _json(before), "after": _json(value)}
            setattr(case, field, value)
    if diff:
        _touch(case)
        log(session, principal, case, "updated", **diff)
        if "lead_user_id" in diff:
            # The former lead stays on the team as a member, without the lead's powers.
            await session.execute(
                update(CaseMember)
                .where(
                    CaseMember.case_id == case.id,
                    CaseMember.user_id == uuid.UUID(diff["lead_user_id"]["before"]),
                    CaseMember.role == "lead",
                )
                .values(role="member")
            )
            await _upsert_member(session, principal, case, case.lead_user_id, "lead", None)
            await sync_grants(session, case)
    await session.flush()
    return case


async def _upsert_member(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    user_id: uuid.UUID,
    role: str,
    expires_at: datetime | None,
) -> None:
    await session.execute(
        insert(CaseMember)
        .values(
            case_id=case.id,
            user_id=user_id,
            role=role,
            expires_at=expires_at,
            added_by=principal.name,
        )
        .on_conflict_do_update(
            index_elements=["case_id", "user_id"], set_={"role": role, "expires_at": expires_at}
        )
    )


async def sync_grants(session: AsyncSession, case: Case) -> None:
    """Recompute the record grants this case gives: every linked record to every unit that
    has held custody and to every team member (until their expiry). Grants carry no
    consent, so the policy keeps H2 and other agencies' `agency` records withheld."""
    await session.execute(
        delete(RecordGrant).where(
            RecordGrant.source_id == case.id, RecordGrant.reason.in_(("case_custody", "case_team"))
        )
    )
    linked = (
        await session.scalars(
            select(CaseRecord.record_id)
            .join(Record, Record.id == CaseRecord.record_id)
            .where(CaseRecord.case_id == case.id, Record.purged_at.is_(None))
        )
    ).all()
    team = (
        await session.execute(
            select(CaseMember.user_id, CaseMember.expires_at).where(CaseMember.case_id == case.id)
        )
    ).all()
    grants = [
        {
            "record_id": r,
            "unit_id": u,
            "user_id": None,
            "expires_at": None,
            "reason": "case_custody",
            "source_id": case.id,
        }
        for r in linked
        for u in case.custodian_unit_ids
    ] + [
        {
            "record_id": r,
            "unit_id": None,
            "user_id": user_id,
            "expires_at": expires_at,
            "reason": "case_team",
            "source_id": case.id,
        }
        for r in linked
        for user_id, expires_at in team
    ]
    if grants:
        await session.execute(insert(RecordGrant), grants)
    audit.also(
        session,
        "case.grants",
        "case",
        case.id,
        records=[str(r) for r in linked],
        units=[str(u) for u in case.custodian_unit_ids],
        users=[str(user_id) for user_id, _ in team],
        grants=len(grants),
    )


async def put_member(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    user_id: uuid.UUID,
    body: TeamMemberIn,
) -> None:
    """Add a team member from any unit (or change their role or expiry)."""
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    await policy.check_case_lead(session, principal, case)
    policy.check_case_open(case)
    user = await _officer(session, user_id, ["path", "user_id"])
    if user_id == case.lead_user_id and (body.role != "lead" or body.expires_at is not None):
        raise invalid_field(
            ["body", "role"], "the case lead stays lead without expiry; name another lead first"
        )
    await _upsert_member(session, principal, case, user_id, body.role, body.expires_at)
    log(
        session,
        principal,
        case,
        "team_member_set",
        user=user.username,
        role=body.role,
        expires_at=body.expires_at,
    )
    _touch(case)
    await sync_grants(session, case)
    if user_id != principal.id:
        await notifications.notify(
            session,
            [user_id],
            "case_assigned",
            f"Vous êtes ajouté à l'équipe du dossier {case.reference}",
            f"{case.title} — rôle : {body.role}",
            case_id=case.id,
        )


async def remove_member(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    await policy.check_case_lead(session, principal, case)
    policy.check_case_open(case)
    if user_id == case.lead_user_id:
        raise Problem(
            409, "lead_required", "Conflict", "The lead stays on the team; name another lead first."
        )
    username = await session.scalar(select(User.username).where(User.id == user_id))
    result = await session.execute(
        delete(CaseMember).where(CaseMember.case_id == case.id, CaseMember.user_id == user_id)
    )
    if result.rowcount == 0:
        raise not_found("team member")
    log(session, principal, case, "team_member_removed", user=username)
    _touch(case)
    await sync_grants(session, case)


async def link_record(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, record_id: uuid.UUID
) -> None:
    """Link a record the caller can read; the case's units and team then see it through
    grants, unless its handling withholds it."""
    case = await _workable_case(session, principal, case_id)
    record = await policy.visible_record(session, principal, record_id)
    exists = await session.get(CaseRecord, (case.id, record.id))
    if exists is not None:
        raise Problem(409, "already_linked", "Conflict", "The record is already linked.")
    session.add(CaseRecord(case_id=case.id, record_id=record.id, linked_by=principal.name))
    log(session, principal, case, "record_linked", record_id=record.id)
    _touch(case)
    await session.flush()
    await sync_grants(session, case)


async def linked_records(
    session: AsyncSession, principal: Principal, case: Case
) -> list[LinkedRecord]:
    """The case's records as the caller may see them: a summary, or a placeholder naming
    only the origin unit when the record's handling withholds it from the caller."""
    rows = (
        await session.execute(
            select(CaseRecord.record_id, Unit.code, Record.purged_at)
            .join(Record, Record.id == CaseRecord.record_id)
            .join(Unit, Unit.id == Record.unit_id)
            .where(CaseRecord.case_id == case.id)
            .order_by(CaseRecord.linked_at)
        )
    ).all()
    visible = {s.id: s for s in await summaries(session, principal, [r.record_id for r in rows])}
    return [
        LinkedRecord(
            record_id=rid,
            withheld=True,
            unit_code=code,
            purged_at=purged_at,
            message=f"Purgé le {purged_at:%d/%m/%Y} (fin de conservation)",
        )
        if purged_at is not None
        else LinkedRecord(record_id=rid, withheld=False, unit_code=code, record=visible[rid])
        if rid in visible
        else LinkedRecord(
            record_id=rid,
            withheld=True,
            unit_code=code,
            message=f"Retenu par {code} : demandez l'accès",
        )
        for rid, code, purged_at in rows
    ]


async def add_entity(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    case_id: uuid.UUID,
    entity: Entity,
) -> CaseEntity:
    """Link an entity to the case; its selectors are matched against every other holder
    (deconfliction) in this transaction."""
    case = await _workable_case(session, principal, case_id)
    found = selectors(entity)
    item = CaseEntity(
        case_id=case.id,
        data=entity.model_dump(mode="json", exclude_none=True),
        selectors=[f"{t}:{v}" for t, v in found],
        added_by=principal.name,
    )
    session.add(item)
    await session.flush()
    if found:
        await session.execute(
            insert(CaseSelector).on_conflict_do_nothing(),
            [{"case_id": case.id, "type": t, "value": v} for t, v in found],
        )
        await deconfliction.match(session, settings, key=f"case:{case.id}", pairs=found)
    log(session, principal, case, "entity_added", entity_id=item.id, kind=entity.kind)
    _touch(case)
    return item


async def _check_assignee(session: AsyncSession, case: Case, user_id: uuid.UUID | None) -> None:
    """An assignee must be someone who sees the case."""
    if user_id is not None and not await policy.user_sees_case(session, user_id, case):
        raise invalid_field(
            ["body", "assignee_id"], "not a member of the custody unit or of the case team"
        )


async def add_task(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, body: TaskIn
) -> CaseTask:
    case = await _workable_case(session, principal, case_id)
    await _check_assignee(session, case, body.assignee_id)
    task = CaseTask(
        case_id=case.id,
        title=body.title,
        assignee_id=body.assignee_id,
        due_on=body.due_on,
        status="todo",
        created_by=principal.name,
    )
    session.add(task)
    await session.flush()
    log(
        session,
        principal,
        case,
        "task_added",
        task_id=task.id,
        title=task.title,
        assignee_id=task.assignee_id,
        due_on=str(task.due_on) if task.due_on else None,
    )
    _touch(case)
    if task.assignee_id and task.assignee_id != principal.id:
        await notifications.notify(
            session,
            [task.assignee_id],
            "task_assigned",
            f"Tâche assignée — dossier {case.reference}",
            task.title,
            case_id=case.id,
        )
    return task


async def update_task(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    task_id: uuid.UUID,
    body: TaskUpdate,
) -> CaseTask:
    case = await _workable_case(session, principal, case_id)
    task = await session.scalar(
        select(CaseTask)
        .where(CaseTask.id == task_id, CaseTask.case_id == case.id)
        .with_for_update()
    )
    if task is None:
        raise not_found("task")
    changes = body.model_dump(exclude_unset=True)
    if "assignee_id" in changes:
        await _check_assignee(session, case, changes["assignee_id"])
    diff = {}
    for field, value in changes.items():
        if field != "assignee_id" and value is None:
            continue
        if getattr(task, field) != value:
            diff[field] = {"before": _json(getattr(task, field)), "after": _json(value)}
            setattr(task, field, value)
    if diff:
        task.updated_at = datetime.now(UTC)
        log(
            session,
            principal,
            case,
            "task_changed",
            task_id=task.id,
            **{
                k: {kk: str(vv) if vv is not None else None for kk, vv in v.items()}
                for k, v in diff.items()
            },
        )
        _touch(case)
        told = {task.assignee_id} - {None, principal.id}
        if told:
            await notifications.notify(
                session,
                told,
                "task_changed",
                f"Tâche modifiée — dossier {case.reference}",
                task.title,
                case_id=case.id,
            )
    await session.flush()
    return task


async def _add_to_case(
    session: AsyncSession, principal: Principal, case: Case, item, action: str, **details: Any
):
    """Store an item of the case, and put it on the timeline."""
    session.add(item)
    await session.flush()
    log(session, principal, case, action, item_id=item.id, **details)
    audit.note(session, item_id=str(item.id))
    _touch(case)
    return item


async def add_note(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, body: str
) -> CaseNote:
    case = await _workable_case(session, principal, case_id)
    note = CaseNote(case_id=case.id, body=body, author=principal.name)
    return await _add_to_case(session, principal, case, note, "note_added")


async def add_drug_seizure(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, body: DrugSeizureIn
) -> DrugSeizure:
    case = await _workable_case(session, principal, case_id)
    seizure = DrugSeizure(case_id=case.id, created_by=principal.name, **body.model_dump())
    return await _add_to_case(
        session,
        principal,
        case,
        seizure,
        "drug_seizure_added",
        substance=seizure.substance,
        quantity=str(seizure.quantity),
        unit=seizure.quantity_unit,
    )


async def add_asset_seizure(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, body: AssetSeizureIn
) -> AssetSeizure:
    case = await _workable_case(session, principal, case_id)
    seizure = AssetSeizure(case_id=case.id, created_by=principal.name, **body.model_dump())
    return await _add_to_case(
        session,
        principal,
        case,
        seizure,
        "asset_seizure_added",
        category=seizure.category,
        estimated_value_eur=str(seizure.estimated_value_eur),
    )


async def add_arrest(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, body: ArrestIn
) -> Arrest:
    case = await _workable_case(session, principal, case_id)
    if body.person_entity_ids:
        persons = set(
            (
                await session.scalars(
                    select(CaseEntity.id).where(
                        CaseEntity.case_id == case.id,
                        CaseEntity.id.in_(body.person_entity_ids),
                        CaseEntity.data["kind"].astext == "person",
                    )
                )
            ).all()
        )
        missing = [i for i, e in enumerate(body.person_entity_ids) if e not in persons]
        if missing:
            raise invalid_field(
                ["body", "person_entity_ids", missing[0]], "not a person entity of this case"
            )
    arrest = Arrest(case_id=case.id, created_by=principal.name, **body.model_dump())
    return await _add_to_case(session, principal, case, arrest, "arrest_added", count=arrest.count)


async def close_case(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, outcome: str, note: str
) -> Case:
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    await policy.check_case_lead(session, principal, case)
    if case.status != "open":
        raise Problem(
            409, "case_not_open", "Conflict", f"A case that is {case.status} cannot be closed."
        )
    case.status, case.outcome, case.outcome_note = "closed", outcome, note
    log(session, principal, case, "closed", outcome=outcome, note=note)
    _touch(case)
    await session.flush()
    return case


async def reopen_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> Case:
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    policy.check_custody_supervisor(principal, case)
    if case.status != "closed":
        raise Problem(409, "case_not_closed", "Conflict", "Only a closed case is reopened.")
    log(session, principal, case, "reopened", outcome_before=case.outcome)
    case.status, case.outcome, case.outcome_note = "open", None, None
    _touch(case)
    await session.flush()
    return case


async def move_custody(session: AsyncSession, case: Case, to_unit_id: uuid.UUID) -> None:
    """Custody moves; the earlier custody units keep access (they stay custodians)."""
    case.unit_id = to_unit_id
    if to_unit_id not in case.custodian_unit_ids:
        case.custodian_unit_ids = [*case.custodian_unit_ids, to_unit_id]
    await sync_grants(session, case)


async def delegate(
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    to_unit_id: uuid.UUID,
    note: str,
) -> Case:
    """Hand a case down to a unit below the custody unit."""
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    policy.check_custody_supervisor(principal, case)
    if case.status != "open":
        raise Problem(
            409, "case_not_open", "Conflict", f"A case that is {case.status} cannot be delegated."
        )
    below = await policy.units_below(session, (case.unit_id,))
    if to_unit_id == case.unit_id or to_unit_id not in below:
        raise invalid_field(["body", "to_unit_id"], "not a unit below the custody unit")
    before = await unit_code(session, case.unit_id)
    await move_custody(session, case, to_unit_id)
    after = await unit_code(session, to_unit_id)
    log(session, principal, case, "delegated", unit={"before": before, "after": after}, note=note)
    _touch(case)
    await session.flush()
    await notifications.notify(
        session,
        await supervisors_of(session, to_unit_id),
        "case_delegated",
        f"Dossier {case.reference} délégué à {after}",
        case.title,
        case_id=case.id,
    )
    return case


async def timeline(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID
) -> list[CaseEvent]:
    case = await policy.visible_case(session, principal, case_id)
    return list(
        (
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
            )
        ).all()
    )


async def detail(session: AsyncSession, principal: Principal, case: Case) -> dict[str, Any]:
    """Everything shown on a case the caller may see."""

    def of(model):
        return select(model).where(model.case_id == case.id).order_by(model.created_at)

    team = (
        await session.execute(
            select(CaseMember, User.username)
            .join(User, User.id == CaseMember.user_id)
            .where(CaseMember.case_id == case.id)
            .order_by(CaseMember.added_at)
        )
    ).all()
    now = datetime.now(UTC)
    return {
        **(await case_summary(session, case)).model_dump(),
        "summary": case.summary,
        "judicial_reference": case.judicial_reference,
        "outcome": case.outcome,
        "outcome_note": case.outcome_note,
        "version": case.version,
        "created_by": case.created_by,
        "team": [
            {
                "user_id": m.user_id,
                "username": name,
                "role": m.role,
                "expires_at": m.expires_at,
                "active": m.expires_at is None or m.expires_at > now,
            }
            for m, name in team
        ],
        "records": await linked_records(session, principal, case),
        "entities": (await session.scalars(of(CaseEntity))).all(),
        "tasks": (await session.scalars(of(CaseTask))).all(),
        "notes": (await session.scalars(of(CaseNote))).all(),
        "drug_seizures": (await session.scalars(of(DrugSeizure))).all(),
        "asset_seizures": (await session.scalars(of(AssetSeizure))).all(),
        "arrests": (await session.scalars(of(Arrest))).all(),
    }


def _with_names(query: Select) -> Select:
    return (
        query.add_columns(Unit.code, User.username)
        .join(Unit, Unit.id == Case.unit_id)
        .join(User, User.id == Case.lead_user_id)
    )


def _summary(case: Case, unit_code: str, lead: str) -> CaseSummary:
    return CaseSummary(
        id=case.id,
        reference=case.reference,
        title=case.title,
        priority=case.priority,
        status=case.status,
        unit_id=case.unit_id,
        unit_code=unit_code,
        lead=lead,
        created_at=case.created_at,
        updated_at=case.updated_at,
    )


async def case_summary(session: AsyncSession, case: Case) -> CaseSummary:
    row = (await session.execute(_with_names(select(Case)).where(Case.id == case.id))).one()
    return _summary(*row)


async def cases_of_record(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID
) -> list[CaseSummary]:
    """The cases the caller may see that a record is linked to, most recent first (the
    caller checked that it sees the record)."""
    rows = await session.execute(
        _with_names(select(Case))
        .join(CaseRecord, CaseRecord.case_id == Case.id)
        .where(CaseRecord.record_id == record_id, await policy.case_filter(session, principal))
        .order_by(Case.created_at.desc(), Case.id.desc())
    )
    return [_summary(*row) for row in rows]


async def search_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    q: str | None,
    status: str | None,
    priority: str | None,
    unit_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CaseSummary], str | None]:
    """Visible cases, most recently created first, by cursor; `q` matches the reference
    or the title (case-insensitive)."""
    query: Select = _with_names(select(Case)).where(await policy.case_filter(session, principal))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Case.reference.ilike(pattern), Case.title.ilike(pattern)))
    if status:
        query = query.where(Case.status == status)
    if priority:
        query = query.where(Case.priority == priority)
    if unit_id:
        query = query.where(Case.unit_id == unit_id)
    if cursor:
        position = decode_cursor(cursor, {"t": datetime, "i": uuid.UUID})
        query = query.where(tuple_(Case.created_at, Case.id) < tuple_(*position))
    rows = (
        await session.execute(
            query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit + 1)
        )
    ).all()
    rows, next_cursor = page(rows, limit, lambda last: {"t": last[0].created_at, "i": last[0].id})
    query_given = {"q": q, "status": status, "priority": priority, "unit_id": unit_id}
    audit.note(
        session,
        query={k: v for k, v in query_given.items() if v is not None},
        results=len(rows),
    )
    return [_summary(*row) for row in rows], next_cursor
