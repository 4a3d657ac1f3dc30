"""The audit trail: who did what to which object, when, from where, why, and how it ended.

One **trail** per unit of work (an HTTP request, a CLI command) travels in the session's
`info`. It is opened from the request with the route's name as action (every route of the
API is named `object.verb`), services add what only they know (`note`: the created
object's id, a search's parameters and result count, the purpose; `also`: further events
such as grants), and `finish` writes it in the same transaction just before the commit —
no action without its event, no event for an action that rolled back. Denials (401, 403,
404, 428) are written by the error handler in a transaction of their own, since the
request's own rolls back.

Tamper evidence: rows are spread over a few chains. A transaction takes the head of a
chain no other transaction holds (`FOR UPDATE SKIP LOCKED`) and keeps it to its commit,
so writers never queue behind one lock and each chain's rows are in commit order. Every
row carries `hash = HMAC(key, prev_hash ‖ canonical fields)`; `verify` walks each chain
and names the first row altered, removed or inserted out of order (a chain cut short with
its head wound back shows only against an `anchor` kept outside the database). The key (setting
`audit_key`) is not in the database, so a database user cannot reseal a rewritten chain.
"""

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.errors import Problem, invalid_field
from app.models import AuditChain, AuditEvent
from app.pagination import decode_cursor, page
from app.schemas.audit import AccessLogEntry, Anomaly, AuditEventOut
from app.settings import Settings

if TYPE_CHECKING:
    from fastapi import Request

GENESIS = bytes(32)
# Hashed in this order; `id` is not sealed (the chain and its sequence order the rows).
SEALED = (
    "chain",
    "chain_seq",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "agency",
    "unit_id",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "status",
    "purpose",
    "request_id",
    "ip",
    "user_agent",
    "details",
)
DENIALS = frozenset({401, 403, 404, 428})
CASE_REFERENCE = re.compile(r"^[A-Z][A-Z0-9]*-\d{4}-\d{4,}$")
PURPOSE_HELP = (
    "Send X-Purpose (percent-encoded UTF-8) or the `purpose` parameter: the reference of "
    "a case you can see (e.g. CROSS13-2026-0042) or a justification of at least 10 characters."
)

_TAKE_FREE_CHAIN = text(
    "select chain, seq, hash from audit_chains order by random() limit 1 for update skip locked"
)
_TAKE_ANY_CHAIN = text(
    "select chain, seq, hash from audit_chains order by random() limit 1 for update"
)


@dataclass
class Actor:
    """Who acted: a user, a service client, the command line, or nobody yet known."""

    kind: str
    id: uuid.UUID | None = None
    name: str | None = None
    agency: str | None = None

    @classmethod
    def of(cls, principal: Principal | None) -> "Actor":
        if principal is None:
            return cls("anonymous")
        return cls(principal.kind, principal.id, principal.name, principal.agency)


@dataclass
class Trail:
    """What the events of one unit of work share, and what services add to them."""

    key: bytes
    enabled: bool
    purpose_required: frozenset[str]
    action: str | None = None
    status: int | None = None
    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    purpose: str | None = None
    actor: Actor | None = None
    outcome: str = "success"
    object_type: str | None = None
    object_id: str | None = None
    unit_id: uuid.UUID | None = None
    details: dict[str, Any] = field(default_factory=dict)
    extra: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_settings(cls, settings: Settings, **kwargs: Any) -> "Trail":
        return cls(
            key=settings.audit_key.get_secret_value().encode(),
            enabled=settings.audit_enabled,
            purpose_required=frozenset(settings.purpose_required),
            **kwargs,
        )

    @classmethod
    def for_request(cls, request: "Request") -> "Trail":
        """The trail of a request: its route's name is the action (`record.read`), the
        path's `<object>_id` the object, its other path parameters go to details."""
        route = request.scope.get("route")
        name = getattr(route, "name", "") or ""
        action = name if "." in name else None
        object_type = action.split(".")[0] if action else None
        params = dict(request.path_params)
        object_id = params.pop(f"{object_type}_id", None) if object_type else None
        purpose = _header_text(request.headers.get("x-purpose")) or request.query_params.get(
            "purpose"
        )
        client = request.client
        trail = cls.for_settings(
            request.app.state.settings,
            action=action,
            status=getattr(route, "status_code", None) or 200,
            request_id=getattr(request.state, "request_id", None),
            ip=client.host if client else None,
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
            purpose=(purpose or "").strip()[:500] or None,
            object_type=object_type,
            object_id=str(object_id) if object_id is not None else None,
        )
        if params:
            trail.details["params"] = {k: str(v) for k, v in params.items()}
        return trail

    def event(
        self, principal: Principal | None, action: str, outcome: str, status: int | None
    ) -> dict[str, Any]:
        """The columns of one event of this trail (chain fields come when it is written)."""
        actor = self.actor or Actor.of(principal)
        unit_id = self.unit_id
        if unit_id is None and principal is not None and len(principal.memberships) == 1:
            unit_id = principal.memberships[0].unit_id
        return {
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "actor_name": actor.name,
            "agency": actor.agency,
            "unit_id": unit_id,
            "action": action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "outcome": outcome,
            "status": status,
            "purpose": self.purpose,
            "request_id": self.request_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "details": dict(self.details),
        }


def _header_text(value: str | None) -> str | None:
    """A header holding free text: percent-encoded UTF-8 (`V%C3%A9rification`), or raw
    UTF-8 bytes, which arrive decoded as Latin-1."""
    if value is None:
        return None
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return unquote(value)


def begin(session: AsyncSession, trail: Trail) -> Trail:
    session.info["audit_trail"] = trail
    return trail


def current(session: AsyncSession) -> Trail | None:
    return session.info.get("audit_trail")


def note(
    session: AsyncSession,
    *,
    action: str | None = None,
    actor: Actor | None = None,
    outcome: str | None = None,
    status: int | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    unit_id: uuid.UUID | None = None,
    **details: Any,
) -> None:
    """Add what only the service knows to this unit of work's event (no-op without one)."""
    trail = current(session)
    if trail is None:
        return
    if action is not None:
        trail.action = action
    if actor is not None:
        trail.actor = actor
    if outcome is not None:
        trail.outcome = outcome
    if status is not None:
        trail.status = status
    if object_type is not None:
        trail.object_type = object_type
    if object_id is not None:
        trail.object_id = str(object_id)
    if unit_id is not None:
        trail.unit_id = unit_id
    trail.details.update(details)


def also(
    session: AsyncSession, action: str, object_type: str, object_id: Any, **details: Any
) -> None:
    """One more event of this unit of work, e.g. a grant a case link creates."""
    trail = current(session)
    if trail is not None:
        trail.extra.append(
            {
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id),
                "details": details,
            }
        )


async def require_purpose(session: AsyncSession, principal: Principal, what: str) -> None:
    """Check the purpose of access given for `what` (a key of settings.purpose_required).

    A purpose that is given is always checked: a case reference must name a case the
    caller can see, anything else must be a justification of at least 10 characters.
    None given: 428 when `what` requires one."""
    trail = current(session)
    if trail is None:
        return
    if trail.purpose is None:
        if what in trail.purpose_required:
            raise Problem(428, "purpose_required", "Purpose of access required", PURPOSE_HELP)
        return
    if "purpose_kind" in trail.details:
        return
    if CASE_REFERENCE.match(trail.purpose):
        case_id = await policy.visible_case_reference(session, principal, trail.purpose)
        if case_id is None:
            raise invalid_field(["header", "X-Purpose"], "no case you can see has this reference")
        trail.details.update(purpose_kind="case", purpose_case_id=str(case_id))
    elif len(trail.purpose) >= 10:
        trail.details["purpose_kind"] = "justification"
    else:
        raise invalid_field(["header", "X-Purpose"], PURPOSE_HELP)


# --- writing -------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def seal(key: bytes, prev_hash: bytes, row: dict[str, Any]) -> bytes:
    """The row's hash: HMAC-SHA256 of the previous hash and the row's sealed fields."""
    payload = json.dumps(
        [_canonical(row[name]) for name in SEALED],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hmac.new(key, prev_hash + payload.encode(), hashlib.sha256).digest()


# One statement whatever the number of events: the rows travel as one JSON array, and
# the chain's head moves in the same statement. (A compiled ORM insert of N rows costs
# several times more than the database's own work here.)
_APPEND = text("""
    with moved as (
        update audit_chains set seq = :seq, hash = :hash where chain = :chain
    )
    insert into audit_events (
        chain, chain_seq, prev_hash, hash, at, actor_kind, actor_id, actor_name, agency,
        unit_id, action, object_type, object_id, outcome, status, purpose, request_id, ip,
        user_agent, details)
    select chain, chain_seq, decode(prev_hash, 'hex'), decode(hash, 'hex'), at, actor_kind,
           actor_id, actor_name, agency, unit_id, action, object_type, object_id, outcome,
           status, purpose, request_id, ip, user_agent, coalesce(details, '{}')
    from jsonb_to_recordset(cast(:rows as jsonb)) as r(
        chain smallint, chain_seq bigint, prev_hash text, hash text, at timestamptz,
        actor_kind text, actor_id uuid, actor_name text, agency text, unit_id uuid,
        action text, object_type text, object_id text, outcome text, status smallint,
        purpose text, request_id text, ip text, user_agent text, details jsonb)
""")


@dataclass
class _Head:
    chain: int
    seq: int
    hash: bytes


async def _head(session: AsyncSession) -> _Head:
    """The chain this transaction writes to, locked until it ends: a free one if any."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get("audit_head")
    if held is not None and held[0] is transaction:
        return held[1]
    row = (await session.execute(_TAKE_FREE_CHAIN)).first()
    if row is None:
        row = (await session.execute(_TAKE_ANY_CHAIN)).one()
    head = _Head(row.chain, row.seq, bytes(row.hash))
    session.info["audit_head"] = (transaction, head)
    return head


async def append(session: AsyncSession, key: bytes, events: list[dict[str, Any]]) -> None:
    """Seal and insert events in this transaction, moving the chain's head."""
    head = await _head(session)
    at = datetime.now(UTC)
    rows = []
    for event in events:
        details = json.loads(json.dumps(event.get("details") or {}, default=str))
        row = {**event, "details": details, "at": at, "chain": head.chain}
        row["chain_seq"] = head.seq + 1
        row["prev_hash"] = head.hash
        row["hash"] = seal(key, head.hash, row)
        head.seq, head.hash = row["chain_seq"], row["hash"]
        rows.append(row)
    await session.execute(
        _APPEND,
        {
            "chain": head.chain,
            "seq": head.seq,
            "hash": head.hash,
            "rows": json.dumps(
                [
                    {
                        **{name: _canonical(row[name]) for name in SEALED},
                        "prev_hash": row["prev_hash"].hex(),
                        "hash": row["hash"].hex(),
                    }
                    for row in rows
                ],
                ensure_ascii=False,
            ),
        },
    )


async def finish(session: AsyncSession, principal: Principal | None) -> None:
    """Write this unit of work's events, just before it commits."""
    trail = current(session)
    if trail is None or not trail.enabled:
        return
    events = []
    if trail.action and (principal is not None or trail.actor is not None):
        events.append(trail.event(principal, trail.action, trail.outcome, trail.status))
    for extra in trail.extra:
        event = trail.event(principal, extra["action"], "success", None)
        event.update(object_type=extra["object_type"], object_id=extra["object_id"])
        event["details"] = extra["details"]
        events.append(event)
    trail.extra.clear()
    if events:
        await append(session, trail.key, events)


async def record_denial(request: "Request", status: int) -> None:
    """Write the denial of a named route in a transaction of its own (the request's
    rolled back). The object is the one the path named, seen or not."""
    trail: Trail | None = getattr(request.state, "audit_trail", None)
    if trail is None:
        trail = Trail.for_request(request)
    if not trail.enabled or not trail.action or status not in DENIALS:
        return
    principal = getattr(request.state, "principal", None)
    event = trail.event(principal, trail.action, "denied", status)
    event["details"].pop("results", None)
    async with request.app.state.db.sessionmaker() as session:
        await append(session, trail.key, [event])
        await session.commit()


# --- verifying -------------------------------------------------------------------------


@dataclass
class Breach:
    """The first row that breaks a chain, and how."""

    chain: int
    seq: int
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"event {self.event_id}" if self.event_id is not None else "an event"
        return f"{where} (chain {self.chain}, position {self.seq}): {self.problem}"


async def verify(
    session: AsyncSession, key: bytes, progress: Callable[[int, int], None] | None = None
) -> tuple[int, Breach | None]:
    """Walk every chain in order; return how many events were checked and the first
    breach (None when the trail is intact).

    Judges one state of a live trail: the walk runs in one REPEATABLE READ snapshot, so
    events committed meanwhile are neither half-seen nor taken for insertions. Give it a
    session that has not begun a transaction (in one already begun, it reads what that
    transaction's isolation gives)."""
    if not session.in_transaction():
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    total = await session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    checked = 0
    heads = (await session.execute(select(AuditChain).order_by(AuditChain.chain))).scalars().all()
    known = {h.chain for h in heads}
    stray = await session.scalar(
        select(AuditEvent.id).where(AuditEvent.chain.not_in(known)).limit(1)
    )
    if stray is not None:
        return checked, Breach(-1, 0, stray, "belongs to no chain (inserted)")
    for head in heads:
        prev_hash, position = GENESIS, 0
        async for row in _chain_rows(session, head.chain):
            checked += 1
            if progress and checked % 10_000 == 0:
                progress(checked, total)
            position += 1
            breach = _check_row(key, head.chain, position, prev_hash, row)
            if breach is not None:
                return checked, breach
            prev_hash = row["hash"]
        if head.seq != position or head.hash != prev_hash:
            problem = (
                f"events removed from the chain's end (the head says {head.seq} events)"
                if head.seq > position
                else "the chain's last event was replaced"
                if head.seq == position
                else f"events inserted after the chain's head ({head.seq} events)"
            )
            return checked, Breach(head.chain, position, None, problem)
    if progress:
        progress(checked, total)
    return checked, None


def _check_row(
    key: bytes, chain: int, position: int, prev_hash: bytes, row: dict[str, Any]
) -> Breach | None:
    if row["chain_seq"] != position:
        return Breach(
            chain,
            position,
            row["id"],
            f"found at position {row['chain_seq']}: the events before it were removed",
        )
    if row["prev_hash"] != prev_hash:
        return Breach(chain, position, row["id"], "does not seal its predecessor")
    if not hmac.compare_digest(seal(key, prev_hash, row), row["hash"]):
        return Breach(chain, position, row["id"], "its seal does not match: altered or forged")
    return None


async def anchor(session: AsyncSession) -> str:
    """A digest of every chain's head (position and hash). Kept outside the database at
    each verification, it shows whether a chain was later cut short and its head wound
    back — which the database alone cannot show."""
    heads = await session.execute(
        select(AuditChain.chain, AuditChain.seq, AuditChain.hash).order_by(AuditChain.chain)
    )
    digest = hashlib.sha256()
    for chain, seq, head_hash in heads:
        digest.update(f"{chain}:{seq}:".encode() + bytes(head_hash))
    return digest.hexdigest()


async def _chain_rows(session: AsyncSession, chain: int) -> AsyncIterator[dict[str, Any]]:
    """One chain's rows in order, read in keyset batches."""
    after = 0
    columns = [AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash] + [
        getattr(AuditEvent, name) for name in SEALED
    ]
    while True:
        rows = (
            (
                await session.execute(
                    select(*columns)
                    .where(AuditEvent.chain == chain, AuditEvent.chain_seq > after)
                    .order_by(AuditEvent.chain_seq)
                    .limit(5_000)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield {**row, "prev_hash": bytes(row["prev_hash"]), "hash": bytes(row["hash"])}
        after = rows[-1]["chain_seq"]


# --- oversight --------------------------------------------------------------------------


@dataclass
class EventFilters:
    actor_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _filtered(filters: EventFilters):
    query = select(AuditEvent)
    for name in ("actor_id", "unit_id", "object_type", "object_id", "outcome"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(AuditEvent, name) == value)
    if filters.action:
        # `record.` selects every record action; `record.read` exactly that one.
        if filters.action.endswith("."):
            query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == filters.action)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    return query


async def list_events(
    session: AsyncSession,
    principal: Principal,
    filters: EventFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEventOut], str | None]:
    """The trail, newest first, for auditors."""
    policy.check_auditor(principal)
    query = _filtered(filters)
    if cursor:
        (before,) = decode_cursor(cursor, {"i": int})
        query = query.where(AuditEvent.id < before)
    rows = (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1))).all()
    note(session, query={k: v for k, v in filters.__dict__.items() if v is not None})
    rows, next_cursor = page(rows, limit, lambda last: {"i": last.id})
    return [AuditEventOut.model_validate(r) for r in rows], next_cursor


async def access_log(
    session: AsyncSession,
    principal: Principal,
    record_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[AccessLogEntry], str | None]:
    """Who consulted or changed a record and why, newest first: for the supervisors of
    its origin unit and for auditors."""
    record = await policy.access_log_record(session, principal, record_id)
    query = select(AuditEvent).where(
        AuditEvent.object_type == "record", AuditEvent.object_id == str(record.id)
    )
    if cursor:
        (before,) = decode_cursor(cursor, {"i": int})
        query = query.where(AuditEvent.id < before)
    rows = (await session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1))).all()
    rows, next_cursor = page(rows, limit, lambda last: {"i": last.id})
    return [AccessLogEntry.model_validate(r) for r in rows], next_cursor


async def export(
    session: AsyncSession, since: datetime | None, until: datetime | None
) -> AsyncIterator[dict[str, Any]]:
    """Every event of the period in order, as JSON-ready dicts with their seals (for a
    SIEM), read in keyset batches."""
    query = _filtered(EventFilters(since=since, until=until))
    after = 0
    while True:
        rows = (
            await session.scalars(
                query.where(AuditEvent.id > after).order_by(AuditEvent.id).limit(5_000)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            out = AuditEventOut.model_validate(row).model_dump(mode="json")
            out.update(
                chain=row.chain,
                chain_seq=row.chain_seq,
                prev_hash=row.prev_hash.hex(),
                hash=row.hash.hex(),
            )
            yield out
        after = rows[-1].id


READS = (
    "record.read",
    "record.history",
    "record.attachment.download",
    "record.search",
    "case.read",
    "case.search",
    "case.timeline",
    "escalation.read",
)
# A user's reads and searches against the median of the other members of each of its
# units (members without activity count as 0); a member of several units is compared in
# each of them.
_VOLUME = text("""
    with reads as (
        select actor_id, max(actor_name) as actor_name, count(*) as n
        from audit_events
        where at >= :since and at < :until and actor_kind = 'user' and outcome = 'success'
          and action = any(:reads)
        group by actor_id
    ), peers as (
        select m.unit_id, m.user_id, coalesce(r.n, 0) as n
        from memberships m
        left join reads r on r.actor_id = m.user_id
    )
    select r.actor_id, r.actor_name, m.unit_id, r.n,
           (select percentile_cont(0.5) within group (order by p.n) from peers p
             where p.unit_id = m.unit_id and p.user_id <> r.actor_id) as median
    from reads r
    join memberships m on m.user_id = r.actor_id
    where r.n >= :min_events
    order by r.actor_id, median
""")
_OFF_HOURS = text("""
    select actor_id, max(actor_name) as actor_name, (array_agg(unit_id))[1] as unit_id,
           count(*) as n
    from audit_events
    where at >= :since and at < :until and actor_kind in ('user', 'client')
      and extract(hour from at at time zone :tz) not between 6 and 21
    group by actor_id
""")
_DENIAL_BURSTS = text("""
    select actor_id, max(actor_name) as actor_name, (array_agg(unit_id))[1] as unit_id,
           max(ip) as ip, max(burst) as n
    from (
        select actor_id, actor_name, unit_id, ip,
               coalesce(actor_id::text, 'ip:' || coalesce(ip, '?')) as who,
               count(*) over (
                   partition by coalesce(actor_id::text, 'ip:' || coalesce(ip, '?'))
                   order by at range between interval '10 minutes' preceding and current row
               ) as burst
        from audit_events
        where at >= :since and at < :until and outcome = 'denied'
    ) d
    group by who, actor_id
    having max(burst) >= :burst
""")
_SELECTOR_WITHOUT_CASE = text("""
    select actor_id, max(actor_name) as actor_name, (array_agg(unit_id))[1] as unit_id,
           count(*) as n
    from audit_events
    where at >= :since and at < :until and action = 'record.search' and outcome = 'success'
      and (details -> 'query' ->> 'selector' is not null
           or details -> 'query' ->> 'person' is not null)
      and coalesce(details ->> 'purpose_kind', '') <> 'case'
    group by actor_id
""")


async def anomalies(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    since: datetime,
    until: datetime,
) -> list[Anomaly]:
    """What an auditor should look at in a period, per actor (see `Anomaly`)."""
    policy.check_auditor(principal)
    window = {"since": since, "until": until}
    found: list[Anomaly] = []

    def flag(kind: str, row: Any, detail: str) -> None:
        found.append(
            Anomaly(
                kind=kind,
                actor_id=row.actor_id,
                actor_name=row.actor_name,
                unit_id=row.unit_id,
                count=row.n,
                detail=detail,
            )
        )

    volume = await session.execute(
        _VOLUME, {**window, "reads": list(READS), "min_events": settings.anomaly_min_events}
    )
    flagged = set()
    for r in volume:
        if r.actor_id in flagged or r.median is None:
            continue
        if r.n > settings.anomaly_peer_factor * max(r.median, 1):
            flagged.add(r.actor_id)
            detail = f"{r.n} reads and searches; the unit's other members: median {r.median:g}"
            flag("volume", r, detail)
    tz = settings.anomaly_timezone
    for r in await session.execute(_OFF_HOURS, {**window, "tz": tz}):
        flag("off_hours", r, f"{r.n} actions outside 06:00–22:00 ({tz})")
    bursts = {**window, "burst": settings.anomaly_denial_burst}
    for r in await session.execute(_DENIAL_BURSTS, bursts):
        who = "" if r.actor_id else f" from {r.ip or 'an unknown address'}"
        flag("denial_burst", r, f"{r.n} refusals within 10 minutes{who}")
    for r in await session.execute(_SELECTOR_WITHOUT_CASE, window):
        flag("selector_without_case", r, f"{r.n} selector or person searches without a case")
    note(session, since=since, until=until, results=len(found))
    return found
