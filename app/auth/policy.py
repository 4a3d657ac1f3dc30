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
"""

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import Problem, forbidden, invalid_field, not_found
from app.models import Record, RecordGrant, Unit

SCOPE_ORDER = {"agency": 0, "unit": 1, "chain": 2, "network": 3}
MARKING_ORDER = {"NP": 0, "DR": 1}


@dataclass(frozen=True)
class Reach:
    """Where a principal stands in the unit tree: its units, and those units with every
    unit below them (whose `chain` records rise to it)."""

    unit_ids: tuple[uuid.UUID, ...]
    unit_and_below_ids: tuple[uuid.UUID, ...]


async def reach(session: AsyncSession, principal: Principal) -> Reach:
    units = principal.unit_ids
    if not units:
        return Reach((), ())
    tree = select(Unit.id).where(Unit.id.in_(units)).cte("below", recursive=True)
    tree = tree.union_all(select(Unit.id).join(tree, Unit.parent_id == tree.c.id))
    below = tuple((await session.scalars(select(tree.c.id).distinct())).all())
    return Reach(units, below)


def reads_intelligence(principal: Principal) -> bool:
    """Whether the principal may see any intelligence content at all."""
    if principal.is_admin or principal.is_auditor or not principal.memberships:
        return False
    return "records:read" in principal.scopes


async def record_filter(session: AsyncSession, principal: Principal) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the records `principal` may see."""
    if not reads_intelligence(principal):
        return false()
    where = await reach(session, principal)
    units = list(where.unit_ids)
    in_own_unit = Record.unit_id.in_(units)
    same_agency = Record.author_agency == principal.agency
    by_scope = or_(
        Record.scope == "network",
        and_(Record.scope.in_(("unit", "chain")), in_own_unit),
        and_(Record.scope == "agency", in_own_unit, same_agency),
        and_(Record.scope == "chain", Record.unit_id.in_(where.unit_and_below_ids)),
    )
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


def filing_unit(principal: Principal, unit_id: uuid.UUID | None) -> uuid.UUID:
    """The origin unit of a record `principal` files: required only when it sits in
    several units, and always one of its own."""
    if principal.is_admin or principal.is_auditor:
        raise forbidden("Platform administrators and auditors do not file intelligence.")
    if "records:write" not in principal.scopes:
        raise Problem(403, "insufficient_scope", "Forbidden", "The records:write scope is required.")
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
        raise Problem(403, "insufficient_scope", "Forbidden", "The records:write scope is required.")
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
