"""In-app notifications: written by the services that act on cases, escalations and tasks,
read by their recipient only, and announced to the live event streams through PostgreSQL
NOTIFY, so that every app process hears of them (see app.events)."""

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from app.auth.principal import Principal
from app.errors import not_found
from app.models import Notification
from app.pagination import decode_cursor, page

CHANNEL = "crossintel_events"
TITLE_MAX = Notification.__table__.c.title.type.length

_NOTIFY = text("select pg_notify(:channel, p) from unnest(:payloads) as p").bindparams(
    bindparam("payloads", type_=ARRAY(Text))
)


@dataclass
class Message:
    """One notification to several recipients, with the objects it is about."""

    user_ids: Iterable[uuid.UUID]
    kind: str
    title: str
    body: str = ""
    case_id: uuid.UUID | None = None
    escalation_id: uuid.UUID | None = None
    hit_id: uuid.UUID | None = None
    operation_id: uuid.UUID | None = None


async def notify(
    session: AsyncSession,
    user_ids: Iterable[uuid.UUID],
    kind: str,
    title: str,
    body: str = "",
    *,
    case_id: uuid.UUID | None = None,
    escalation_id: uuid.UUID | None = None,
    hit_id: uuid.UUID | None = None,
    operation_id: uuid.UUID | None = None,
) -> list[Notification]:
    """Notify each distinct recipient, in the caller's transaction (see `notify_many`)."""
    message = Message(user_ids, kind, title, body, case_id, escalation_id, hit_id, operation_id)
    return await notify_many(session, [message])


async def notify_many(session: AsyncSession, messages: list[Message]) -> list[Notification]:
    """Write several notifications in one statement, in the caller's transaction.

    The NOTIFY that wakes the live streams is sent in the same transaction, so PostgreSQL
    delivers it only if the transaction commits: a rolled-back action announces nothing.

    The caller guarantees that every recipient may see what `title` and `body` say.
    A notification must never reveal anything its recipient may not see (a case, a unit,
    a record, a person): it is shown as written, with no visibility check on reading.

    A title longer than the column allows is cut, ending with "…".
    """
    rows = []
    for m in messages:
        title = m.title if len(m.title) <= TITLE_MAX else m.title[: TITLE_MAX - 1] + "…"
        rows += [
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "kind": m.kind,
                "title": title,
                "body": m.body,
                "case_id": m.case_id,
                "escalation_id": m.escalation_id,
                "hit_id": m.hit_id,
                "operation_id": m.operation_id,
            }
            for user_id in dict.fromkeys(m.user_ids)
        ]
    if not rows:
        return []
    created = list(
        (await session.scalars(insert(Notification).returning(Notification), rows)).all()
    )
    payloads = [
        json.dumps({"user_id": str(n.user_id), "notification_id": str(n.id)}) for n in created
    ]
    await session.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})
    return created


async def list_notifications(
    session: AsyncSession,
    principal: Principal,
    *,
    unread_only: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[Notification], str | None]:
    """The caller's own notifications, newest first, by cursor. Service clients have none."""
    if principal.kind != "user":
        return [], None
    query = select(Notification).where(Notification.user_id == principal.id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if cursor:
        position = decode_cursor(cursor, {"t": datetime, "i": uuid.UUID})
        query = query.where(tuple_(Notification.created_at, Notification.id) < tuple_(*position))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc())
    rows = (await session.scalars(query.limit(limit + 1))).all()
    return page(rows, limit, lambda last: {"t": last.created_at, "i": last.id})


async def own_notification(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Notification | None:
    """The notification if it is addressed to `user_id`, else None."""
    return await session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )


async def mark_read(
    session: AsyncSession, principal: Principal, notification_id: uuid.UUID
) -> Notification:
    """Mark one of the caller's notifications read (the first reading time is kept);
    404 for anyone else's, as for one that does not exist."""
    notification = (
        await own_notification(session, principal.id, notification_id)
        if principal.kind == "user"
        else None
    )
    if notification is None:
        raise not_found("notification")
    if notification.read_at is None:
        notification.read_at = datetime.now(UTC)
        await session.flush()
    return notification


async def mark_all_read(session: AsyncSession, principal: Principal) -> int:
    """Mark every unread notification of the caller read; returns how many were."""
    if principal.kind != "user":
        return 0
    result = await session.execute(
        update(Notification)
        .where(Notification.user_id == principal.id, Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    return result.rowcount
