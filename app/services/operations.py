"""Event deconfliction: planned operations of different units that overlap in time and
place. Protects officers' lives: two units must not raid, watch or deliver in the same
place at the same time without knowing of each other.

Two planned operations of different units conflict when their windows overlap (half-open,
`[starts_at, ends_at)`: touching windows do not) and their circles intersect (centres at
most `radius_a + radius_b` apart, great-circle distance). The check is one query: the
GiST index on the window range finds the overlapping operations, a latitude band narrows
them, the haversine distance decides. Conflicts are kept (`operation_conflicts`) so that
both sides are alerted once, when a conflict appears — at creation or after a change —
and told when a cancellation lifts it.
"""

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, delete, func, literal, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.concurrency import check_if_match
from app.errors import invalid_field, not_found
from app.models import Operation, OperationConflict
from app.models.operations import OPERATION_KINDS
from app.pagination import decode_cursor, page
from app.schemas.operations import Conflict, OperationCreate, OperationOut, OperationUpdate
from app.services import audit, notifications
from app.services.deconfliction import unit_contacts

EARTH_RADIUS_M = 6_371_000.0
MAX_RADIUS_M = 50_000  # the schema's limit: the latitude band below relies on it
# Along a meridian, as the haversine below measures (so the latitude band never cuts a
# circle the distance would keep), with a margin for rounding.
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180 / 1.001
KIND_LABELS = {
    "search": "une perquisition",
    "surveillance": "une surveillance",
    "controlled_delivery": "une livraison surveillée",
    "arrest": "une interpellation",
    "undercover": "une infiltration",
}
assert set(KIND_LABELS) == set(OPERATION_KINDS)
CONFLICT = "Conflit d'opération : {unit} prévoit {kind} à {distance} m, du {start} au {end} (UTC)"
LIFTED = "Conflit levé : {unit} ({kind}, du {start} au {end} UTC) ne chevauche plus"


def _distance(lat: Any, lon: Any, other_lat: Any, other_lon: Any) -> Any:
    """Great-circle distance in metres (haversine), in SQL."""
    half_dlat = func.radians(other_lat - lat) / 2
    half_dlon = func.radians(other_lon - lon) / 2
    a = func.power(func.sin(half_dlat), 2) + func.cos(func.radians(lat)) * func.cos(
        func.radians(other_lat)
    ) * func.power(func.sin(half_dlon), 2)
    return 2 * EARTH_RADIUS_M * func.asin(func.sqrt(func.least(a, literal(1.0, Float))))


async def conflicts_of(session: AsyncSession, op: Operation) -> list[tuple[Operation, float]]:
    """Other units' planned operations conflicting with `op`, nearest first."""
    band = (op.radius_m + MAX_RADIUS_M) / METRES_PER_DEGREE
    distance = _distance(op.lat, op.lon, Operation.lat, Operation.lon)
    rows = await session.execute(
        select(Operation, distance.label("distance"))
        .where(
            Operation.status == "planned",
            Operation.unit_id != op.unit_id,
            Operation.id != op.id,
            # The GiST index `ix_operations_window` serves this overlap.
            func.tstzrange(Operation.starts_at, Operation.ends_at).op("&&")(
                func.tstzrange(op.starts_at, op.ends_at)
            ),
            Operation.lat.between(op.lat - band, op.lat + band),
            distance <= Operation.radius_m + op.radius_m,
        )
        .order_by(distance)
    )
    return [(other, d) for other, d in rows]


def _pair(one: uuid.UUID, two: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    return (one, two) if str(one) < str(two) else (two, one)


async def _tell(session: AsyncSession, op: Operation, other: Operation, title: str) -> None:
    """Tell one side (its unit's supervisors and the planner) about the other operation:
    its unit, kind, window and whom to call."""
    units = await unit_contacts(session, {op.unit_id, other.unit_id})
    told = [user_id for user_id, _, _ in units.supervisors.get(op.unit_id, [])]
    names = ", ".join(units.contacts[other.unit_id]) or "—"
    await notifications.notify(
        session,
        [*told, op.created_by_id],
        "operation_conflict",
        title.format(
            unit=units.codes[other.unit_id],
            kind=KIND_LABELS[other.kind],
            start=f"{other.starts_at.astimezone(UTC):%d/%m %H:%M}",
            end=f"{other.ends_at.astimezone(UTC):%d/%m %H:%M}",
        ),
        f"Contact : {names}.",
        operation_id=op.id,
    )


# Operations are planned one after the other: two units planning at the same moment
# would otherwise each miss the other's uncommitted operation, and neither be alerted.
# Planning is rare enough for one transaction-level advisory lock to cost nothing.
_LOCK = text("select pg_advisory_xact_lock(:space, 0)").bindparams(space=0x4F50)  # "OP"


async def _recheck(session: AsyncSession, op: Operation) -> list[tuple[Operation, float]]:
    """Bring the stored conflicts of `op` in line with what holds now: alert both sides of
    each new one, tell both sides of each lifted one."""
    await session.execute(_LOCK)
    found = await conflicts_of(session, op) if op.status == "planned" else []
    stored = {
        (row.a_id, row.b_id)
        for row in await session.execute(
            select(OperationConflict.a_id, OperationConflict.b_id).where(
                or_(OperationConflict.a_id == op.id, OperationConflict.b_id == op.id)
            )
        )
    }
    now_pairs = {_pair(op.id, other.id): (other, d) for other, d in found}
    for pair, (other, distance) in now_pairs.items():
        if pair in stored:
            continue
        await session.execute(
            insert(OperationConflict)
            .values(a_id=pair[0], b_id=pair[1], distance_m=distance)
            .on_conflict_do_nothing()
        )
        alert = CONFLICT.replace("{distance}", f"{distance:,.0f}".replace(",", " "))
        await _tell(session, op, other, alert)
        await _tell(session, other, op, alert)
        audit.also(session, "operation.conflict", "operation", other.id, with_operation=str(op.id))
    lifted = stored - now_pairs.keys()
    if lifted:
        await session.execute(
            delete(OperationConflict).where(
                tuple_(OperationConflict.a_id, OperationConflict.b_id).in_(lifted)
            )
        )
        for a_id, b_id in lifted:
            other = await session.get(Operation, b_id if a_id == op.id else a_id)
            await _tell(session, other, op, LIFTED)
            await _tell(session, op, other, LIFTED)
    return found


async def create_operation(
    session: AsyncSession, principal: Principal, body: OperationCreate
) -> Operation:
    """Plan an operation for the caller's unit; conflicting operations of other units are
    found at once and both sides alerted."""
    unit_id = policy.operation_unit(principal, body.unit_id)
    if body.case_id is not None:
        case = await policy.visible_case(session, principal, body.case_id)
        await policy.check_case_work(session, principal, case)
    op = Operation(
        id=uuid.uuid4(),
        unit_id=unit_id,
        created_by_id=principal.id,
        created_by=principal.name,
        kind=body.kind,
        case_id=body.case_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        lat=body.lat,
        lon=body.lon,
        radius_m=body.radius_m,
        address=body.address,
        status="planned",
        version=1,
    )
    session.add(op)
    await session.flush()
    await _recheck(session, op)
    audit.note(session, object_id=op.id, unit_id=unit_id)
    return op


async def visible_operation(
    session: AsyncSession,
    principal: Principal,
    operation_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Operation:
    query = select(Operation).where(
        Operation.id == operation_id, policy.operation_filter(principal)
    )
    if for_update:
        query = query.with_for_update()
    op = await session.scalar(query)
    if op is None:
        raise not_found("operation")
    return op


async def update_operation(
    session: AsyncSession,
    principal: Principal,
    operation_id: uuid.UUID,
    body: OperationUpdate,
    if_match: str | None,
) -> Operation:
    """Change a planned operation (If-Match); its conflicts are checked again."""
    op = await visible_operation(session, principal, operation_id, for_update=True)
    policy.operation_unit(principal, op.unit_id)
    check_if_match(op.version, if_match, "operation")
    if op.status != "planned":
        raise invalid_field(["body"], "a cancelled operation cannot change")
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is not None or field == "address":
            setattr(op, field, value)
    if op.ends_at <= op.starts_at:
        raise invalid_field(["body", "ends_at"], "must be after starts_at")
    op.version += 1
    op.updated_at = datetime.now(UTC)
    await session.flush()
    await _recheck(session, op)
    return op


async def cancel_operation(
    session: AsyncSession, principal: Principal, operation_id: uuid.UUID
) -> Operation:
    """Cancel an operation; the other sides of its conflicts are told they are lifted."""
    op = await visible_operation(session, principal, operation_id, for_update=True)
    policy.operation_unit(principal, op.unit_id)
    if op.status != "cancelled":
        op.status = "cancelled"
        op.version += 1
        op.updated_at = datetime.now(UTC)
        await session.flush()
        await _recheck(session, op)
    return op


async def operation_out(session: AsyncSession, op: Operation) -> OperationOut:
    """An operation of the caller's unit with its current conflicts."""
    found = await conflicts_of(session, op) if op.status == "planned" else []
    units = await unit_contacts(session, {op.unit_id} | {other.unit_id for other, _ in found})
    conflicts = [
        Conflict(
            operation_id=other.id,
            unit_id=other.unit_id,
            unit_code=units.codes[other.unit_id],
            contact=units.contacts[other.unit_id],
            kind=other.kind,
            starts_at=other.starts_at,
            ends_at=other.ends_at,
            distance_m=round(distance),
        )
        for other, distance in found
    ]
    unit_code = units.codes[op.unit_id]
    return OperationOut(
        id=op.id,
        unit_id=op.unit_id,
        unit_code=unit_code,
        kind=op.kind,
        case_id=op.case_id,
        starts_at=op.starts_at,
        ends_at=op.ends_at,
        lat=op.lat,
        lon=op.lon,
        radius_m=op.radius_m,
        address=op.address,
        status=op.status,
        created_by=op.created_by,
        version=op.version,
        conflicts=conflicts,
    )


async def list_operations(
    session: AsyncSession,
    principal: Principal,
    *,
    include_past: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[OperationOut], str | None]:
    """The caller's units' operations, soonest first, each with its conflicts."""
    query = select(Operation).where(policy.operation_filter(principal))
    if not include_past:
        query = query.where(Operation.ends_at > func.now(), Operation.status == "planned")
    if cursor:
        position = decode_cursor(cursor, {"t": datetime, "i": uuid.UUID})
        query = query.where(tuple_(Operation.starts_at, Operation.id) > tuple_(*position))
    rows = (
        await session.scalars(query.order_by(Operation.starts_at, Operation.id).limit(limit + 1))
    ).all()
    rows, next_cursor = page(rows, limit, lambda last: {"t": last.starts_at, "i": last.id})
    items = [await operation_out(session, op) for op in rows]
    audit.note(session, results=len(items))
    return items, next_cursor
