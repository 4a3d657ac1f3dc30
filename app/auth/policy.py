"""Who sees what — the only place that knows.

Every query on intelligence objects starts from the filters built here, and every action
on them is checked here. What a principal may not see does not exist for them: callers
answer 404 (never 403) for an invisible object, and it is absent from every list, count,
facet and history.

The rules (DESIGN §1, "Who sees what"):

* Platform admins and auditors see no intelligence content, whatever units they hold
  (separation of duties); neither does a principal with no unit membership.
* A record's scope decides who sees it without a grant:
  - `agency`: members of the origin unit who belong to the author's agency;
  - `unit`: every member of the origin unit (the CROSS decompartmentalisation);
  - `chain`: members of the origin unit and of every unit above it;
  - `network`: members of any unit.
* A grant (case custody or team, accepted escalation, approved access request) opens one
  record to a unit or a user until it expires — but handling binds grants: an `H2` record
  rides a grant only with the originating unit's consent, and an `agency` record never
  leaves its author's agency, grant or not.
* A service client never sees a marking above its maximum, and needs the `records:read`
  scope to read at all (`records:write` to file).

Cases (DESIGN §1, "Cases and escalation"):

* A case is seen by the members of every unit that has held its custody (the current
  custody unit and the earlier ones, which keep access), by its team members until their
  membership expires, and by the units above only through escalation: the supervisors of
  the unit a pending escalation is addressed to (and, for national units such as OFAST,
  of any unit below them, to oversee the review queues).
* Linking a record to a case opens it to the case's custody units and team through grants
  (reasons `case_custody` and `case_team`, without consent): H2 records and agency records
  of another agency stay withheld and show as placeholders.
* Service clients, admins and auditors see no case.
"""

import uuid

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Problem, forbidden, invalid_field, not_found
from app.models import (
    AccessRequest,
    Case,
    CaseMember,
    Escalation,
    Hit,
    Membership,
    Operation,
    Record,
    RecordGrant,
    RecordSelector,
    Unit,
)

SCOPE_ORDER = {"agency": 0, "unit": 1, "chain": 2, "network": 3}
MARKING_ORDER = {"NP": 0, "DR": 1}


async def units_below(
    session: AsyncSession, unit_ids: tuple[uuid.UUID, ...]
) -> tuple[uuid.UUID, ...]:
    """The given units and every unit below them."""
    if not unit_ids:
        return ()
    tree = select(Unit.id).where(Unit.id.in_(unit_ids)).cte("below", recursive=True)
    tree = tree.union_all(select(Unit.id).join(tree, Unit.parent_id == tree.c.id))
    return tuple((await session.scalars(select(tree.c.id).distinct())).all())


def reads_intelligence(principal: Principal) -> bool:
    """Whether the principal may see any intelligence content at all."""
    if principal.is_admin or principal.is_auditor or not principal.memberships:
        return False
    return "records:read" in principal.scopes


def _by_scope(principal: Principal) -> ColumnElement[bool]:
    """The records `principal` sees by their scope alone, without a grant."""
    in_own_unit = Record.unit_id.in_(list(principal.unit_ids))
    return or_(
        Record.scope == "network",
        and_(Record.scope.in_(("unit", "chain")), in_own_unit),
        and_(Record.scope == "agency", in_own_unit, Record.author_agency == principal.agency),
        and_(Record.scope == "chain", Record.unit_id.in_(principal.below_unit_ids)),
    )


async def record_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the records `principal` may see."""
    if not reads_intelligence(principal):
        return false()
    units = list(principal.unit_ids)
    same_agency = Record.author_agency == principal.agency
    by_scope = _by_scope(principal)
    grantee = RecordGrant.unit_id.in_(units)
    if principal.kind == "user":
        grantee = or_(grantee, RecordGrant.user_id == principal.id)
    active = or_(RecordGrant.expires_at.is_(None), RecordGrant.expires_at > func.now())
    # Uncorrelated sub-selects: PostgreSQL hashes each once per query instead of probing
    # the grants for every candidate record.
    granted = select(RecordGrant.record_id).where(grantee, active)
    consented = granted.where(RecordGrant.consented)
    by_grant = and_(
        or_(Record.scope != "agency", same_agency),
        or_(
            Record.id.in_(consented),
            and_(Record.handling_code != "H2", Record.id.in_(granted)),
        ),
    )
    marking = true()
    if MARKING_ORDER[principal.max_marking] < MARKING_ORDER["DR"]:
        marking = Record.marking == "NP"
    return and_(marking, or_(by_scope, by_grant))


async def visible_record(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID, *, for_update: bool = False
) -> Record:
    """The record if `principal` may see it; 404 otherwise (never 403)."""
    query = select(Record).where(Record.id == record_id, await record_filter(session, principal))
    if for_update:
        query = query.with_for_update(of=Record)
    record = await session.scalar(query)
    if record is None:
        raise not_found("record")
    return record


async def readable_record(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID
) -> tuple[Record, bool]:
    """The record if `principal` may see it (404 otherwise), and whether it sees it only
    through a grant — outside its own unit's view, which needs a purpose of access."""
    query = select(Record, ~_by_scope(principal)).where(
        Record.id == record_id, await record_filter(session, principal)
    )
    row = (await session.execute(query)).first()
    if row is None:
        raise not_found("record")
    return row[0], row[1]


def filing_unit(principal: Principal, unit_id: uuid.UUID | None) -> uuid.UUID:
    """The origin unit of a record `principal` files: required only when it sits in
    several units, and always one of its own."""
    if principal.is_admin or principal.is_auditor:
        raise forbidden("Platform administrators and auditors do not file intelligence.")
    if "records:write" not in principal.scopes:
        raise Problem(
            403, "insufficient_scope", "Forbidden", "The records:write scope is required."
        )
    if not principal.memberships:
        raise forbidden("Filing intelligence needs a unit membership.")
    if unit_id is None:
        if len(principal.memberships) > 1:
            raise invalid_field(["body", "unit_id"], "required: you are a member of several units")
        return principal.memberships[0].unit_id
    if principal.role_in(unit_id) is None:
        raise invalid_field(["body", "unit_id"], "you are not a member of this unit")
    return unit_id


def check_marking(principal: Principal, marking: str) -> None:
    if MARKING_ORDER[marking] > MARKING_ORDER[principal.max_marking]:
        raise invalid_field(
            ["body", "marking"], f"above this client's maximum marking ({principal.max_marking})"
        )


def check_can_edit(principal: Principal, record: Record) -> None:
    """Only members of the origin unit edit a record (analysts: only their own)."""
    if "records:write" not in principal.scopes:
        raise Problem(
            403, "insufficient_scope", "Forbidden", "The records:write scope is required."
        )
    role = principal.role_in(record.unit_id)
    if role is None:
        raise forbidden("Only the origin unit edits a record.")
    is_author = principal.id in (record.author_user_id, record.author_client_id)
    if role == "analyst" and not is_author:
        raise forbidden("Analysts do not edit other people's records.")


def check_scope_change(principal: Principal, record: Record, new_scope: str) -> None:
    """Widening: the author or a supervisor of the origin unit. Narrowing: a supervisor."""
    if new_scope == record.scope:
        return
    supervisor = principal.role_in(record.unit_id) == "supervisor"
    is_author = principal.id in (record.author_user_id, record.author_client_id)
    if SCOPE_ORDER[new_scope] > SCOPE_ORDER[record.scope]:
        if not (is_author or supervisor):
            raise forbidden("Only the author or a supervisor widens a record's scope.")
    elif not supervisor:
        raise forbidden("Only a supervisor of the origin unit narrows a record's scope.")


def works_cases(principal: Principal) -> bool:
    """Whether the principal may see any case at all."""
    return (
        principal.kind == "user"
        and bool(principal.memberships)
        and not (principal.is_admin or principal.is_auditor)
    )


def supervised_unit_ids(principal: Principal) -> tuple[uuid.UUID, ...]:
    return tuple(m.unit_id for m in principal.memberships if m.role == "supervisor")


def check_reviews(principal: Principal, record: Record) -> None:
    """Only the supervisors of a record's origin unit review it (keep or purge)."""
    if principal.role_in(record.unit_id) != "supervisor":
        raise forbidden("Only the supervisors of the record's origin unit review it.")


async def access_log_record(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID
) -> Record:
    """The record whose access log `principal` asks for: auditors read any record's log
    (not its content); supervisors of the origin unit read the log of a record they see
    (404 for one they do not, 403 for others who see it)."""
    if principal.is_auditor:
        record = await session.get(Record, record_id)
        if record is None:
            raise not_found("record")
        return record
    record = await visible_record(session, principal, record_id)
    if principal.role_in(record.unit_id) != "supervisor":
        raise forbidden("Only the supervisors of the record's origin unit and auditors read it.")
    return record


def check_auditor(principal: Principal) -> None:
    """The audit trail is read by auditors only."""
    if not principal.is_auditor:
        raise forbidden("Only auditors read the audit trail.")


async def review_unit_ids(
    session: AsyncSession, principal: Principal, *, include_descendants: bool = False
) -> tuple[uuid.UUID, ...]:
    """The units whose incoming escalations the principal reviews: those it supervises,
    and with `include_descendants`, for a supervisor of a national unit, every unit below."""
    supervised = supervised_unit_ids(principal)
    if not include_descendants or not supervised:
        return supervised
    national = tuple(
        (
            await session.scalars(
                select(Unit.id).where(Unit.id.in_(supervised), Unit.kind == "national")
            )
        ).all()
    )
    return tuple(set(await units_below(session, national)) | set(supervised))


async def case_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the cases `principal` may see."""
    if not works_cases(principal):
        return false()
    custodian = Case.custodian_unit_ids.overlap(list(principal.unit_ids))
    team = Case.id.in_(
        select(CaseMember.case_id).where(
            CaseMember.user_id == principal.id,
            or_(CaseMember.expires_at.is_(None), CaseMember.expires_at > func.now()),
        )
    )
    reviewers = await review_unit_ids(session, principal, include_descendants=True)
    reviewing = Case.id.in_(
        select(Escalation.case_id).where(
            Escalation.status == "pending", Escalation.to_unit_id.in_(reviewers)
        )
    )
    return or_(custodian, team, reviewing)


async def visible_case(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, *, for_update: bool = False
) -> Case:
    """The case if `principal` may see it; 404 otherwise (never 403)."""
    query = select(Case).where(Case.id == case_id, await case_filter(session, principal))
    if for_update:
        query = query.with_for_update(of=Case)
    case = await session.scalar(query)
    if case is None:
        raise not_found("case")
    return case


async def visible_case_reference(
    session: AsyncSession, principal: Principal, reference: str
) -> uuid.UUID | None:
    """The id of the case with this reference if `principal` may see it."""
    return await session.scalar(
        select(Case.id).where(Case.reference == reference, await case_filter(session, principal))
    )


async def _team_role(session: AsyncSession, user_id: uuid.UUID | None, case: Case) -> str | None:
    """The user's role on the case team, while their membership lasts."""
    return await session.scalar(
        select(CaseMember.role).where(
            CaseMember.case_id == case.id,
            CaseMember.user_id == user_id,
            or_(CaseMember.expires_at.is_(None), CaseMember.expires_at > func.now()),
        )
    )


async def user_sees_case(session: AsyncSession, user_id: uuid.UUID, case: Case) -> bool:
    """Whether another user sees `case` through custody or the team (the rules of
    `case_filter` that do not depend on a pending escalation): who may be given its tasks."""
    in_custody = await session.scalar(
        select(Membership.user_id)
        .where(Membership.user_id == user_id, Membership.unit_id.in_(case.custodian_unit_ids))
        .limit(1)
    )
    return in_custody is not None or await _team_role(session, user_id, case) is not None


def check_case_open(case: Case) -> None:
    """A closed case takes no more work until it is reopened."""
    if case.status == "closed":
        raise Problem(409, "case_closed", "Conflict", "The case is closed; reopen it first.")


async def check_case_work(session: AsyncSession, principal: Principal, case: Case) -> None:
    """Working a case (links, tasks, notes, seizures, arrests, changes): officers and
    supervisors of the custody unit, and team leads and members (not observers)."""
    check_case_open(case)
    if principal.role_in(case.unit_id) in ("officer", "supervisor"):
        return
    if await _team_role(session, principal.id, case) in ("lead", "member"):
        return
    raise forbidden("Only the custody unit's officers and the case team work this case.")


async def check_case_lead(session: AsyncSession, principal: Principal, case: Case) -> None:
    """Managing the team and closing: supervisors of the custody unit and the lead."""
    if principal.role_in(case.unit_id) == "supervisor" or case.lead_user_id == principal.id:
        return
    if await _team_role(session, principal.id, case) == "lead":
        return
    raise forbidden("Only the custody unit's supervisors and the case lead do this.")


def check_custody_supervisor(principal: Principal, case: Case) -> None:
    """Escalating, delegating and reopening: supervisors of the custody unit."""
    if principal.role_in(case.unit_id) != "supervisor":
        raise forbidden("Only a supervisor of the custody unit does this.")


def check_decides(principal: Principal, escalation: Escalation) -> None:
    """Deciding an escalation: supervisors of the unit it is addressed to."""
    if principal.role_in(escalation.to_unit_id) != "supervisor":
        raise forbidden("Only a supervisor of the target unit decides this escalation.")


# --- deconfliction ----------------------------------------------------------------------
#
# A hit is seen by each side: for a party (a unit and an agency), the members of the unit
# who see one of the party's live records holding the selector; for a case, the members
# of its unit who see the case. They are shown the other side's unit, agency, contact and
# dates, never its content.


async def hit_sides(
    session: AsyncSession, principal: Principal
) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """Conditions on `Hit`: the principal is on side A / on side B."""
    if not works_cases(principal):
        return false(), false()
    units = principal.unit_ids
    records = await record_filter(session, principal)
    cases = await case_filter(session, principal)

    def side(unit_id, agency, value, case_id) -> ColumnElement[bool]:
        holds = (
            select(RecordSelector.record_id)
            .join(Record, Record.id == RecordSelector.record_id)
            .where(
                RecordSelector.type == Hit.selector_type,
                RecordSelector.value == value,
                Record.unit_id == unit_id,
                Record.author_agency == agency,
                Record.purged_at.is_(None),
                records,
            )
        )
        return and_(
            unit_id.in_(units),
            or_(
                and_(case_id.is_(None), exists(holds)),
                exists(select(Case.id).where(Case.id == case_id, cases)),
            ),
        )

    return (
        side(Hit.a_unit_id, Hit.a_agency, Hit.a_value, Hit.a_case_id),
        side(Hit.b_unit_id, Hit.b_agency, Hit.b_value, Hit.b_case_id),
    )


def unit_member_sees(member_agency: str, scope: str, author_agency: str) -> bool:
    """Whether a member of a record's own unit sees it by its scope (`_by_scope` for that
    case): every scope but `agency`, which only the author's agency sees. Used to choose
    whom to tell about a record without a principal for each of them."""
    return scope != "agency" or member_agency == author_agency


async def check_decides_access(
    session: AsyncSession, principal: Principal, request: AccessRequest
) -> None:
    """The holder's supervisors decide on a request for their item: they must supervise
    its unit and see it (404 for those who do not see the item, 403 for others)."""
    if request.record_id is not None:
        await visible_record(session, principal, request.record_id)
    else:
        await visible_case(session, principal, request.case_id)
    if principal.role_in(request.target_unit_id) != "supervisor":
        raise forbidden("Only the supervisors of the unit holding the item decide.")


async def access_request_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The requests a principal sees: its own, and those addressed to the units it
    supervises for an item it sees."""
    if principal.kind != "user":
        return false()
    records = await record_filter(session, principal)
    cases = await case_filter(session, principal)
    return or_(
        AccessRequest.requester_id == principal.id,
        and_(
            AccessRequest.target_unit_id.in_(supervised_unit_ids(principal)),
            or_(
                exists(select(Record.id).where(Record.id == AccessRequest.record_id, records)),
                exists(select(Case.id).where(Case.id == AccessRequest.case_id, cases)),
            ),
        ),
    )


def check_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise forbidden("Only platform administrators manage this.")


# --- operations ---------------------------------------------------------------------------


def operation_unit(principal: Principal, unit_id: uuid.UUID | None) -> uuid.UUID:
    """The unit planning an operation: one where the caller is an officer or supervisor
    (required only when it sits in several)."""
    if principal.kind != "user":
        raise forbidden("Operations are planned by officers.")
    planning = [m.unit_id for m in principal.memberships if m.role in ("officer", "supervisor")]
    if not planning:
        raise forbidden("Planning an operation needs an officer's or supervisor's role.")
    if unit_id is None:
        if len(planning) > 1:
            raise invalid_field(["body", "unit_id"], "required: you plan for several units")
        return planning[0]
    if unit_id not in planning:
        raise invalid_field(["body", "unit_id"], "you do not plan operations for this unit")
    return unit_id


def operation_filter(principal: Principal) -> ColumnElement[bool]:
    """A unit's operations are seen by its members; another unit's only as a conflict."""
    if not works_cases(principal):
        return false()
    return Operation.unit_id.in_(principal.unit_ids)
