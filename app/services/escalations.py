"""Escalations: a case handed up for review, the review queue, decisions."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.auth import policy
from app.auth.principal import Principal
from app.errors import Problem, invalid_field, not_found
from app.models import Case, Escalation, Unit
from app.models.escalations import DECISIONS
from app.pagination import decode_cursor, page
from app.schemas.escalations import EscalationOut
from app.services import audit, notifications
from app.services import units as units_service
from app.services.cases import log, move_custody, supervisors_of, unit_code
from app.settings import Settings

PRIORITY_RANK = {"urgent": 0, "high": 1, "routine": 2}


async def escalate(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    case_id: uuid.UUID,
    to_unit_id: uuid.UUID | None,
    justification: str,
    priority: str,
) -> Escalation:
    """A supervisor of the custody unit asks a unit above (by default the parent) to take
    the case; one pending escalation per case."""
    case = await policy.visible_case(session, principal, case_id, for_update=True)
    policy.check_custody_supervisor(principal, case)
    if case.status != "open":
        raise Problem(
            409, "case_not_open", "Conflict", f"A case that is {case.status} cannot be escalated."
        )
    above = await units_service.ancestor_ids(session, case.unit_id)
    if not above:
        raise invalid_field(["body", "to_unit_id"], "the custody unit has no unit above it")
    target = to_unit_id or above[0]
    if target not in above:
        raise invalid_field(["body", "to_unit_id"], "not a unit above the custody unit")
    now = datetime.now(UTC)
    escalation = Escalation(
        id=uuid.uuid4(),
        case_id=case.id,
        from_unit_id=case.unit_id,
        to_unit_id=target,
        requested_by=principal.name,
        justification=justification,
        priority=priority,
        priority_rank=PRIORITY_RANK[priority],
        status="pending",
        due_at=now + timedelta(hours=settings.review_hours(priority)),
    )
    session.add(escalation)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Problem(
            409, "escalation_pending", "Conflict", "This case already has a pending escalation."
        ) from exc
    case.status = "escalated"
    case.version += 1
    case.updated_at = now
    target_code = await unit_code(session, target)
    log(
        session,
        principal,
        case,
        "escalated",
        escalation_id=escalation.id,
        to_unit=target_code,
        priority=priority,
        justification=justification,
    )
    await session.flush()
    await session.refresh(escalation, ["created_at"])
    await notifications.notify(
        session,
        await supervisors_of(session, target),
        "escalation_requested",
        f"Escalade du dossier {case.reference} vers {target_code}",
        f"{case.title} — priorité {priority}",
        case_id=case.id,
        escalation_id=escalation.id,
    )
    audit.note(session, case_id=str(case.id), escalation_id=str(escalation.id))
    return escalation


async def decide(
    session: AsyncSession,
    principal: Principal,
    escalation_id: uuid.UUID,
    decision: str,
    note: str,
) -> Escalation:
    """A supervisor of the target unit accepts (custody moves up; the origin keeps access),
    returns (for more information) or declines. Concurrent decisions: the escalation row
    is locked, so exactly one wins and the others find it decided (409)."""
    escalation = await session.scalar(
        select(Escalation).where(Escalation.id == escalation_id).with_for_update()
    )
    if escalation is None:
        raise not_found("escalation")
    if escalation.status != "pending" and principal.role_in(escalation.to_unit_id) == "supervisor":
        # A concurrent decision won; its return or decline may have hidden the case from
        # this supervisor of the target unit, who still hears 409 rather than 404.
        raise Problem(
            409, "already_decided", "Conflict", f"This escalation was already {escalation.status}."
        )
    case = await policy.visible_case(session, principal, escalation.case_id, for_update=True)
    policy.check_decides(principal, escalation)
    if escalation.status != "pending":
        raise Problem(
            409, "already_decided", "Conflict", f"This escalation was already {escalation.status}."
        )
    now = datetime.now(UTC)
    escalation.status = DECISIONS[decision]
    escalation.decided_by, escalation.decision_note, escalation.decided_at = (
        principal.name,
        note,
        now,
    )
    case.status = "open"
    case.version += 1
    case.updated_at = now
    if decision == "accept":
        await move_custody(session, case, escalation.to_unit_id)
    target_code = await unit_code(session, escalation.to_unit_id)
    log(
        session,
        principal,
        case,
        f"escalation_{escalation.status}",
        escalation_id=escalation.id,
        by_unit=target_code,
        note=note,
    )
    await session.flush()
    # Every unit the case came up through hears the decision, the origin CROSS included
    # (they keep access to the case when custody moves up).
    told = set()
    for unit_id in await session.scalars(
        select(Escalation.from_unit_id).where(Escalation.case_id == case.id).distinct()
    ):
        told.update(await supervisors_of(session, unit_id))
    verdict = {"accept": "acceptée", "return": "renvoyée pour complément", "decline": "refusée"}
    await notifications.notify(
        session,
        told,
        "escalation_decided",
        f"Escalade du dossier {case.reference} {verdict[decision]} par {target_code}",
        note,
        case_id=case.id,
        escalation_id=escalation.id,
    )
    audit.note(session, case_id=str(case.id), escalation_id=str(escalation.id))
    return escalation


async def pass_on(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    escalation_id: uuid.UUID,
    note: str,
) -> Escalation:
    """An intermediate supervisor passes an escalation on: accepts it (custody moves to
    their unit) and at once escalates the case to the unit above, with `note` as the
    justification and the same priority. Returns the escalation decided; the audit event
    names it and the one it led to, and a second event records the new escalation."""
    escalation = await decide(session, principal, escalation_id, "accept", note)
    onward = await escalate(
        session, principal, settings, escalation.case_id, None, note, escalation.priority
    )
    audit.note(session, escalation_id=str(escalation.id), forwarded_as=str(onward.id))
    audit.also(
        session,
        "case.escalate",
        "case",
        escalation.case_id,
        escalation_id=str(onward.id),
        forwarded_from=str(escalation.id),
    )
    return escalation


def _with_units(query: Select) -> Select:
    origin, target = aliased(Unit), aliased(Unit)
    return (
        query.add_columns(Case.reference, Case.title, origin.code, target.code)
        .join(Case, Case.id == Escalation.case_id)
        .join(origin, origin.id == Escalation.from_unit_id)
        .join(target, target.id == Escalation.to_unit_id)
    )


def escalation_out(row) -> EscalationOut:
    e, reference, title, from_code, to_code = row
    now = datetime.now(UTC)
    return EscalationOut(
        id=e.id,
        case_id=e.case_id,
        case_reference=reference,
        case_title=title,
        from_unit_id=e.from_unit_id,
        from_unit_code=from_code,
        to_unit_id=e.to_unit_id,
        to_unit_code=to_code,
        requested_by=e.requested_by,
        justification=e.justification,
        priority=e.priority,
        status=e.status,
        created_at=e.created_at,
        due_at=e.due_at,
        overdue=e.status == "pending" and e.due_at < now,
        decided_by=e.decided_by,
        decision_note=e.decision_note,
        decided_at=e.decided_at,
    )


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    include_descendants: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[EscalationOut], str | None]:
    """The review queue: escalations addressed to the units the caller supervises (with
    `include_descendants`, for national supervisors, to every unit below), most urgent
    first, then oldest. (The origin follows its own through the case.)"""
    if not policy.works_cases(principal):
        return [], None
    reviewers = await policy.review_unit_ids(
        session, principal, include_descendants=include_descendants
    )
    query = select(Escalation).where(Escalation.to_unit_id.in_(reviewers))
    if status:
        query = query.where(Escalation.status == status)
    if cursor:
        position = decode_cursor(cursor, {"r": int, "t": datetime, "i": uuid.UUID})
        query = query.where(
            tuple_(Escalation.priority_rank, Escalation.created_at, Escalation.id)
            > tuple_(*position)
        )
    rows = (
        await session.execute(
            _with_units(query)
            .order_by(Escalation.priority_rank, Escalation.created_at, Escalation.id)
            .limit(limit + 1)
        )
    ).all()
    rows, next_cursor = page(
        rows,
        limit,
        lambda last: {"r": last[0].priority_rank, "t": last[0].created_at, "i": last[0].id},
    )
    items = [escalation_out(r) for r in rows]
    audit.note(
        session,
        query={"status": status, "include_descendants": include_descendants},
        results=len(items),
    )
    return items, next_cursor


async def decided(session: AsyncSession, escalation: Escalation) -> EscalationOut:
    """The escalation its decider just decided, without the case filter: a return or a
    decline hides the case from the decider, who must still get the answer."""
    row = (
        await session.execute(_with_units(select(Escalation)).where(Escalation.id == escalation.id))
    ).one()
    return escalation_out(row)


async def get_escalation(
    session: AsyncSession, principal: Principal, escalation_id: uuid.UUID
) -> EscalationOut:
    """An escalation of a case the caller may see; 404 otherwise."""
    row = (
        await session.execute(
            _with_units(select(Escalation)).where(
                Escalation.id == escalation_id,
                and_(Case.id == Escalation.case_id, await policy.case_filter(session, principal)),
            )
        )
    ).first()
    if row is None:
        raise not_found("escalation")
    return escalation_out(row)


async def case_escalations(
    session: AsyncSession, principal: Principal, case: Case
) -> list[EscalationOut]:
    rows = (
        await session.execute(
            _with_units(select(Escalation))
            .where(Escalation.case_id == case.id)
            .order_by(Escalation.created_at)
        )
    ).all()
    return [escalation_out(r) for r in rows]
