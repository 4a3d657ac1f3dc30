"""Review and retention of records (Directive (EU) 2016/680, art. 4 and 5).

A record is due for review by the supervisors of its origin unit at `review_at` (a
setting's period after its last change); they keep it (for another period) or decide to
purge it. `purge_batch` purges the records past `retain_until` or decided `purge`: their
content, versions, entities, selectors, grants, deconfliction hits and attachment files
go, a tombstone stays (id, unit, dates, who decided), and each purge is an audit event.
It works in batches, each one transaction taking rows no other run holds (`SKIP
LOCKED`): running it twice, or at once in two processes, or again after an interruption
purges each record exactly once. Files are removed after their batch commits; a file
left behind by an interruption is swept later with the other unreferenced files.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from app.auth import policy
from app.auth.principal import Principal
from app.errors import Problem
from app.models import (
    AccessRequest,
    Hit,
    Record,
    RecordAttachment,
    RecordGrant,
    RecordReview,
    RecordSelector,
    RecordVersion,
    Unit,
)
from app.pagination import decode_cursor, page
from app.schemas.reviews import ReviewDue
from app.services import audit
from app.settings import Settings
from app.storage import FileStore

RETENTION_OVER = "retention period over"


async def due_reviews(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[list[ReviewDue], str | None]:
    """Records due for review in the units the caller supervises (among those it sees),
    the longest overdue first."""
    units = policy.supervised_unit_ids(principal)
    if not units:
        return [], None
    query = (
        select(Record, Unit.code)
        .options(
            load_only(
                Record.id,
                Record.title,
                Record.unit_id,
                Record.review_at,
                Record.retain_until,
                Record.created_at,
                Record.updated_at,
            )
        )
        .join(Unit, Unit.id == Record.unit_id)
        .where(
            Record.unit_id.in_(units),
            Record.review_at <= func.now(),
            Record.purged_at.is_(None),
            Record.purge_decided_at.is_(None),
            await policy.record_filter(session, principal),
        )
    )
    if cursor:
        position = decode_cursor(cursor, {"t": datetime, "i": uuid.UUID})
        query = query.where(tuple_(Record.review_at, Record.id) > tuple_(*position))
    rows = (
        await session.execute(query.order_by(Record.review_at, Record.id).limit(limit + 1))
    ).all()
    rows, next_cursor = page(rows, limit, lambda last: {"t": last[0].review_at, "i": last[0].id})
    items = [
        ReviewDue(
            record_id=r.id,
            title=r.title,
            unit_id=r.unit_id,
            unit_code=code,
            review_at=r.review_at,
            retain_until=r.retain_until,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r, code in rows
    ]
    audit.note(session, results=len(items))
    return items, next_cursor


async def review(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    record_id: uuid.UUID,
    decision: str,
    justification: str,
) -> tuple[RecordReview, Record]:
    """A supervisor of the origin unit keeps the record (review again after another
    period) or decides to purge it (the next retention run does)."""
    record = await policy.visible_record(session, principal, record_id, for_update=True)
    policy.check_reviews(principal, record)
    if record.purged_at is not None or record.purge_decided_at is not None:
        raise Problem(409, "purge_decided", "Conflict", "This record is already to be purged.")
    now = datetime.now(UTC)
    decided = RecordReview(
        record_id=record.id,
        decision=decision,
        justification=justification,
        decided_by_user_id=principal.id,
        decided_by=principal.name,
        decided_at=now,
    )
    session.add(decided)
    if decision == "keep":
        record.review_at = now + timedelta(days=settings.review_after_days)
    else:
        record.purge_decided_at, record.purge_decided_by = now, principal.name
    await session.flush()
    audit.note(session, decision=decision, justification=justification, unit_id=record.unit_id)
    return decided, record


@dataclass
class PurgeBatch:
    purged: list[uuid.UUID]
    files: list[str]


def _due():
    return (
        Record.purged_at.is_(None),
        or_(Record.retain_until <= func.now(), Record.purge_decided_at.is_not(None)),
    )


async def count_due(session: AsyncSession) -> int:
    """How many records the next retention run would purge."""
    return await session.scalar(select(func.count()).select_from(Record).where(*_due())) or 0


async def purge_batch(session: AsyncSession, batch_size: int) -> PurgeBatch:
    """Purge up to `batch_size` due records in this transaction; returns their ids and the
    attachment files no longer referenced (to remove once the transaction commits)."""
    records = (
        await session.scalars(
            select(Record)
            .where(*_due())
            .order_by(Record.retain_until)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not records:
        return PurgeBatch([], [])
    ids = [r.id for r in records]
    files = set(
        (
            await session.scalars(
                delete(RecordAttachment)
                .where(RecordAttachment.record_id.in_(ids))
                .returning(RecordAttachment.sha256)
            )
        ).all()
    )
    still_used = set(
        (
            await session.scalars(
                select(RecordAttachment.sha256).where(RecordAttachment.sha256.in_(files))
            )
        ).all()
    )
    for table in (RecordSelector, RecordVersion, RecordGrant):
        await session.execute(delete(table).where(table.record_id.in_(ids)))
    # Hits on a purged record go with it (and the requests made on them).
    gone_hits = select(Hit.id).where(or_(Hit.a_record_id.in_(ids), Hit.b_record_id.in_(ids)))
    await session.execute(
        delete(AccessRequest).where(
            or_(AccessRequest.hit_id.in_(gone_hits), AccessRequest.record_id.in_(ids))
        )
    )
    await session.execute(delete(Hit).where(Hit.id.in_(gone_hits)))
    now = datetime.now(UTC)
    for record in records:
        record.title, record.narrative = "", ""
        record.commune = record.departement = record.lat = record.lon = None
        record.handling_note = None
        record.drug_types, record.tags, record.entities = [], [], []
        record.search = func.to_tsvector("simple", "")
        record.purged_at = now
        record.purge_decided_by = record.purge_decided_by or RETENTION_OVER
        audit.also(
            session,
            "record.purge",
            "record",
            record.id,
            unit_id=str(record.unit_id),
            decided_by=record.purge_decided_by,
            retain_until=record.retain_until,
        )
    await session.flush()
    return PurgeBatch(ids, sorted(files - still_used))


def remove_files(store: FileStore, files: list[str]) -> None:
    for sha256 in files:
        store.path(sha256).unlink(missing_ok=True)


async def sweep_files(session: AsyncSession, store: FileStore, older_than: timedelta) -> int:
    """Remove stored files no attachment refers to (left by an interrupted purge or a
    rolled-back upload), sparing recent ones whose upload may still be committing."""
    cutoff = (datetime.now(UTC) - older_than).timestamp()
    candidates = {p.name: p for p in store.files() if p.stat().st_mtime < cutoff}
    if not candidates:
        return 0
    used = set(
        (
            await session.scalars(
                select(RecordAttachment.sha256).where(RecordAttachment.sha256.in_(candidates))
            )
        ).all()
    )
    for name in candidates.keys() - used:
        candidates[name].unlink(missing_ok=True)
    return len(candidates.keys() - used)
