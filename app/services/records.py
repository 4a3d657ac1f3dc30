"""Intelligence records: filing, reading, editing with optimistic concurrency, history,
search with facets. Every query starts from the policy's record filter."""

import json
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, func, literal_column, select, text, tuple_, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from app.auth import policy
from app.auth.principal import Principal
from app.concurrency import check_if_match
from app.errors import Problem, invalid_field
from app.models import (
    Record,
    RecordAttachment,
    RecordSelector,
    RecordVersion,
    ServiceClient,
    Unit,
    User,
)
from app.pagination import decode_cursor, page
from app.schemas.entities import entity_adapter
from app.schemas.records import (
    AttachmentOut,
    Facets,
    Location,
    RecordCreate,
    RecordOut,
    RecordSummary,
    RecordUpdate,
)
from app.services import audit, deconfliction
from app.services.deconfliction import party_key
from app.services.entities import entity_names, fold, person_name, search_selectors, selectors
from app.settings import Settings
from app.storage import FileStore, Readable, Refused, TooLarge

TEXT_CONFIG = "french"


def _search_vector(title: str, narrative: str, names: list[str], extra: list[str]) -> Any:
    """The full-text vector of a record. Text is folded (accents stripped) before it
    reaches PostgreSQL, as queries are: accent-insensitive search without `unaccent`,
    which the embedded server lacks."""
    rest = " ".join([narrative, *names, *extra])
    return func.setweight(func.to_tsvector(TEXT_CONFIG, fold(title)), literal_column("'A'")).op(
        "||"
    )(func.to_tsvector(TEXT_CONFIG, fold(rest)))


def _entities_payload(entities: list[Any]) -> tuple[list[dict], set[tuple[str, str]], list[str]]:
    payload = [e.model_dump(mode="json", exclude_none=True) for e in entities]
    found: set[tuple[str, str]] = set()
    names: list[str] = []
    for entity in entities:
        found.update(selectors(entity))
        names.extend(entity_names(entity))
    return payload, found, names


def snapshot(record: Record) -> dict[str, Any]:
    """The record's content as it stands, for its version history."""
    return {
        "title": record.title,
        "narrative": record.narrative,
        "occurred_at": record.occurred_at.isoformat(),
        "location": {
            "commune": record.commune,
            "departement": record.departement,
            "lat": record.lat,
            "lon": record.lon,
        },
        "drug_types": list(record.drug_types),
        "source_reliability": record.source_reliability,
        "information_assessment": record.information_assessment,
        "handling_code": record.handling_code,
        "handling_note": record.handling_note,
        "marking": record.marking,
        "scope": record.scope,
        "tags": list(record.tags),
        "entities": record.entities,
    }


async def _store_selectors(
    session: AsyncSession, record_id: uuid.UUID, found: set[tuple[str, str]]
) -> None:
    """Store the record's selectors (it has none: an edit deletes the old ones first)."""
    if found:
        await session.execute(
            RecordSelector.__table__.insert(),
            [{"record_id": record_id, "type": t, "value": v} for t, v in sorted(found)],
        )


def _index_text(record: Record, names: list[str]) -> None:
    record.search = _search_vector(
        record.title, record.narrative, names, [record.commune or "", *record.tags]
    )


async def create_record(
    session: AsyncSession, principal: Principal, body: RecordCreate, settings: Settings
) -> Record:
    """File a record in the caller's unit (or the unit named, when it sits in several),
    due for review and to be purged after the periods the settings give."""
    unit_id = policy.filing_unit(principal, body.unit_id)
    now = datetime.now(UTC)
    policy.check_marking(principal, body.marking)
    payload, found, names = _entities_payload(body.entities)
    record = Record(
        id=uuid.uuid4(),
        unit_id=unit_id,
        author_user_id=principal.id if principal.kind == "user" else None,
        author_client_id=principal.id if principal.kind == "client" else None,
        author_agency=principal.agency,
        title=body.title,
        narrative=body.narrative,
        occurred_at=body.occurred_at,
        commune=body.location.commune,
        departement=body.location.departement,
        lat=body.location.lat,
        lon=body.location.lon,
        drug_types=sorted(set(body.drug_types)),
        source_reliability=body.source_reliability,
        information_assessment=body.information_assessment,
        handling_code=body.handling_code,
        handling_note=body.handling_note,
        marking=body.marking,
        scope=body.scope,
        tags=sorted(set(body.tags)),
        entities=payload,
        version=1,
        review_at=now + timedelta(days=settings.review_after_days),
        retain_until=now + timedelta(days=settings.retain_days),
    )
    _index_text(record, names)
    session.add(record)
    await session.flush()
    await _store_selectors(session, record.id, found)
    await deconfliction.match(
        session, settings, key=party_key(unit_id, principal.agency), pairs=list(found)
    )
    session.add(
        RecordVersion(
            record_id=record.id, version=1, snapshot=snapshot(record), changed_by=principal.name
        )
    )
    await session.flush()
    audit.note(session, object_id=record.id, unit_id=unit_id)
    return record


def _check_not_purged(record: Record) -> None:
    if record.purged_at is not None:
        raise Problem(
            410,
            "purged",
            "Purged",
            f"This record was purged on {record.purged_at:%Y-%m-%d} "
            f"({record.purge_decided_by or 'retention period over'}); only its tombstone remains.",
        )


async def _readable(session: AsyncSession, principal: Principal, record_id: uuid.UUID) -> Record:
    """A record whose content the caller is about to read: visible (404 otherwise), not
    purged (410), and with a purpose of access when reached through a grant (428)."""
    record, through_grant = await policy.readable_record(session, principal, record_id)
    _check_not_purged(record)
    await audit.require_purpose(
        session, principal, "record.read.granted" if through_grant else "record.read.own"
    )
    audit.note(session, through_grant=through_grant)
    return record


async def get_record(session: AsyncSession, principal: Principal, record_id: uuid.UUID) -> Record:
    """A record the caller may see; 404 otherwise."""
    return await _readable(session, principal, record_id)


async def update_record(
    session: AsyncSession,
    principal: Principal,
    record_id: uuid.UUID,
    body: RecordUpdate,
    if_match: str | None,
    settings: Settings,
) -> Record:
    """Change a record: a new version, checked against If-Match (428 without, 412 stale);
    the change moves its review date."""
    record = await policy.visible_record(session, principal, record_id, for_update=True)
    _check_not_purged(record)
    policy.check_can_edit(principal, record)
    check_if_match(record.version, if_match, "record")
    changes = body.model_dump(exclude_unset=True)
    if "scope" in changes and changes["scope"] is not None:
        policy.check_scope_change(principal, record, changes["scope"])
    if changes.get("marking"):
        policy.check_marking(principal, changes["marking"])
    for field in (
        "title",
        "narrative",
        "occurred_at",
        "source_reliability",
        "information_assessment",
        "handling_code",
        "handling_note",
        "marking",
        "scope",
    ):
        if changes.get(field) is not None or (field == "handling_note" and field in changes):
            setattr(record, field, getattr(body, field))
    if body.location is not None:
        record.commune, record.departement = body.location.commune, body.location.departement
        record.lat, record.lon = body.location.lat, body.location.lon
    if body.drug_types is not None:
        record.drug_types = sorted(set(body.drug_types))
    if body.tags is not None:
        record.tags = sorted(set(body.tags))
    if record.handling_code == "H3" and not (record.handling_note or "").strip():
        raise invalid_field(["body", "handling_note"], "required with handling code H3")
    if body.entities is not None:
        record.entities, found, names = _entities_payload(body.entities)
        await session.execute(
            RecordSelector.__table__.delete().where(RecordSelector.record_id == record.id)
        )
        await _store_selectors(session, record.id, found)
        await deconfliction.match(
            session,
            settings,
            key=party_key(record.unit_id, record.author_agency),
            pairs=list(found),
        )
        _index_text(record, names)
    elif changes.keys() & {"title", "narrative", "location", "tags"}:
        _index_text(record, _stored_names(record.entities))
    record.version += 1
    record.updated_at = datetime.now(UTC)
    record.review_at = record.updated_at + timedelta(days=settings.review_after_days)
    session.add(
        RecordVersion(
            record_id=record.id,
            version=record.version,
            snapshot=snapshot(record),
            changed_by=principal.name,
        )
    )
    await session.flush()
    return record


def _stored_names(entities: list[dict]) -> list[str]:
    return [name for e in entities for name in entity_names(entity_adapter.validate_python(e))]


async def history(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID
) -> list[RecordVersion]:
    """Every version of a visible record, oldest first."""
    record = await _readable(session, principal, record_id)
    return list(
        (
            await session.scalars(
                select(RecordVersion)
                .where(RecordVersion.record_id == record.id)
                .order_by(RecordVersion.version)
            )
        ).all()
    )


def _summary_fields(record: Record, unit_code: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "unit_id": record.unit_id,
        "unit_code": unit_code,
        "author_agency": record.author_agency,
        "occurred_at": record.occurred_at,
        "commune": record.commune,
        "drug_types": record.drug_types,
        "source_reliability": record.source_reliability,
        "information_assessment": record.information_assessment,
        "handling_code": record.handling_code,
        "marking": record.marking,
        "scope": record.scope,
        "created_at": record.created_at,
    }


async def record_out(session: AsyncSession, record: Record) -> RecordOut:
    """The full view of a record the caller may see (the caller checked visibility)."""
    author = func.coalesce(
        select(User.username).where(User.id == record.author_user_id).scalar_subquery(),
        select(ServiceClient.client_id)
        .where(ServiceClient.id == record.author_client_id)
        .scalar_subquery(),
    )
    unit_code, author_name = (
        await session.execute(select(Unit.code, author).where(Unit.id == record.unit_id))
    ).one()
    attachments = (
        await session.scalars(
            select(RecordAttachment)
            .where(RecordAttachment.record_id == record.id)
            .order_by(RecordAttachment.created_at)
        )
    ).all()
    return RecordOut(
        **_summary_fields(record, unit_code),
        narrative=record.narrative,
        location=Location(
            commune=record.commune, departement=record.departement, lat=record.lat, lon=record.lon
        ),
        handling_note=record.handling_note,
        tags=record.tags,
        entities=record.entities,
        author=author_name,
        version=record.version,
        updated_at=record.updated_at,
        review_at=record.review_at,
        retain_until=record.retain_until,
        attachments=[AttachmentOut.model_validate(a) for a in attachments],
    )


async def summaries(
    session: AsyncSession, principal: Principal, record_ids: list[uuid.UUID]
) -> list[RecordSummary]:
    """Summaries of those of `record_ids` the caller may see (the others are left out)."""
    if not record_ids:
        return []
    rows = await session.execute(
        select(Record, Unit.code)
        .join(Unit, Unit.id == Record.unit_id)
        .where(Record.id.in_(record_ids), await policy.record_filter(session, principal))
    )
    return [RecordSummary(**_summary_fields(r, code)) for r, code in rows]


@dataclass
class SearchParams:
    q: str | None = None
    selector: str | None = None
    person: str | None = None
    drug_type: str | None = None
    unit_id: uuid.UUID | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    source_reliability: str | None = None
    handling_code: str | None = None
    limit: int = 50
    cursor: str | None = None
    facets: bool = False

    def audited(self) -> dict[str, Any]:
        """The parameters given, as the audit trail records them."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


async def _conditions(session: AsyncSession, principal: Principal, p: SearchParams) -> list:
    conditions = [await policy.record_filter(session, principal), Record.purged_at.is_(None)]
    if p.person:
        conditions.append(Record.id.in_(_person_matches(p.person)))
    if p.q:
        query = func.websearch_to_tsquery(TEXT_CONFIG, fold(p.q))
        conditions.append(Record.search.op("@@")(query))
    if p.selector:
        candidates = search_selectors(p.selector)
        if not candidates:
            raise invalid_field(
                ["query", "selector"],
                "not a recognised identifier (phone, e-mail, IBAN, plate, VIN, IMO, container…)",
            )
        conditions.append(
            Record.id.in_(
                select(RecordSelector.record_id).where(
                    tuple_(RecordSelector.type, RecordSelector.value).in_(candidates)
                )
            )
        )
    if p.drug_type:
        # `@>` (the GIN index's operator) exists only on the PostgreSQL ARRAY type.
        drug_types = type_coerce(Record.drug_types, ARRAY(String))
        conditions.append(drug_types.contains([p.drug_type]))
    if p.unit_id:
        conditions.append(Record.unit_id == p.unit_id)
    if p.occurred_from:
        conditions.append(Record.occurred_at >= p.occurred_from)
    if p.occurred_to:
        conditions.append(Record.occurred_at < p.occurred_to)
    if p.source_reliability:
        conditions.append(Record.source_reliability == p.source_reliability)
    if p.handling_code:
        conditions.append(Record.handling_code == p.handling_code)
    return conditions


def _person_matches(person: str) -> Select:
    """Records naming a person: `Surname` alone, or `Surname, Given names` exactly
    (folded: accents, case and hyphens do not matter)."""
    surname, _, given = person.partition(",")
    if not fold(surname):
        raise invalid_field(["query", "person"], "a surname is required: `Surname, Given names`")
    wanted = select(RecordSelector.record_id).where(RecordSelector.type == "person_name")
    if given.strip():
        return wanted.where(RecordSelector.value == person_name(surname, given))
    return wanted.where(func.split_part(RecordSelector.value, "|", 1) == fold(surname))


SUMMARY_COLUMNS = (
    Record.id,
    Record.seq,
    Record.title,
    Record.unit_id,
    Record.author_agency,
    Record.occurred_at,
    Record.commune,
    Record.drug_types,
    Record.source_reliability,
    Record.information_assessment,
    Record.handling_code,
    Record.marking,
    Record.scope,
    Record.created_at,
)
# Below this many records matching a search term, a page is built from the term's
# matches rather than by walking the records newest first.
FEW_MATCHES = 10_000
_ESTIMATE = text(
    "explain (format json) select 1 from records where search @@ websearch_to_tsquery('french', :q)"
)


async def _estimated_matches(session: AsyncSession, q: str) -> float:
    """The planner's estimate of how many records hold the term (no rows are read)."""
    plan = await session.scalar(_ESTIMATE, {"q": fold(q)})
    if isinstance(plan, str):
        plan = json.loads(plan)
    return plan[0]["Plan"]["Plan Rows"]


async def search_records(
    session: AsyncSession, principal: Principal, p: SearchParams
) -> tuple[list[RecordSummary], str | None, Facets | None]:
    """Visible records matching the filters, newest first, by cursor; facets on demand
    are counted over every visible match, not only the page. Searching by selector,
    person or text may need a purpose of access (settings.purpose_required)."""
    for given, what in ((p.selector, "selector"), (p.person, "person"), (p.q, "text")):
        if given:
            await audit.require_purpose(session, principal, f"record.search.{what}")
    conditions = await _conditions(session, principal, p)
    query: Select = (
        select(Record, Unit.code)
        .options(load_only(*SUMMARY_COLUMNS))
        .join(Unit, Unit.id == Record.unit_id)
        .where(*conditions)
    )
    if p.cursor:
        (seq,) = decode_cursor(p.cursor, {"s": int})
        if not 0 <= seq < 2**63:
            raise invalid_field(["query", "cursor"], "not a cursor this service gave")
        query = query.where(Record.seq < seq)
    order = Record.seq
    if p.q and await _estimated_matches(session, p.q) < FEW_MATCHES:
        # `seq + 0` hides the seq index from the planner, which then takes the term's
        # few matches from the full-text index and sorts them, instead of walking every
        # record newest first until the page is full — seconds when the matches lie
        # mostly outside what the caller may see.
        order = Record.seq + 0
    rows = (await session.execute(query.order_by(order.desc()).limit(p.limit + 1))).all()
    rows, next_cursor = page(rows, p.limit, lambda last: {"s": last[0].seq})
    items = [RecordSummary(**_summary_fields(r, code)) for r, code in rows]
    facets = await _facets(session, conditions) if p.facets else None
    audit.note(session, query=p.audited(), results=len(items))
    return items, next_cursor, facets


async def _facets(session: AsyncSession, conditions: list) -> Facets:
    matching = (
        select(Record.id, Record.unit_id, Record.drug_types, Record.occurred_at)
        .where(*conditions)
        .subquery()
    )
    drug = literal_column("drug")
    by_drug = await session.execute(
        select(drug, func.count())
        .select_from(select(func.unnest(matching.c.drug_types).label("drug")).subquery())
        .group_by(drug)
    )
    by_unit = await session.execute(
        select(Unit.code, func.count())
        .join(matching, matching.c.unit_id == Unit.id)
        .group_by(Unit.code)
    )
    month = func.to_char(func.timezone("Europe/Paris", matching.c.occurred_at), "YYYY-MM")
    by_month = await session.execute(select(month, func.count()).group_by(month))
    return Facets(
        drug_type=dict(sorted((key, n) for key, n in by_drug)),
        unit=dict(sorted((key, n) for key, n in by_unit)),
        month=dict(sorted((key, n) for key, n in by_month)),
    )


def safe_filename(name: str | None) -> str:
    """A display name for an uploaded file: no path, no quotes, no control characters,
    bounded."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c)[0] != "C" and c != '"').strip(" .")
    return cleaned[:200] or "attachment"


async def add_attachment(
    session: AsyncSession,
    principal: Principal,
    record_id: uuid.UUID,
    store: FileStore,
    upload: Readable,
    filename: str | None,
    max_bytes: int,
) -> RecordAttachment:
    """Attach a file to a record the caller may edit; 413 beyond the limit, 415 for a type
    outside the allow-list (sniffed from the content)."""
    record = await policy.visible_record(session, principal, record_id)
    _check_not_purged(record)
    policy.check_can_edit(principal, record)
    try:
        stored = await store.save(upload, max_bytes)
    except TooLarge as exc:
        raise Problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"Attachments are limited to {max_bytes} bytes.",
        ) from exc
    except Refused as exc:
        raise Problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "This type of file is not accepted (PDF, images, audio, MP4, text).",
            errors=[{"loc": ["body", "file"], "msg": "file type not allowed"}],
        ) from exc
    attachment = RecordAttachment(
        record_id=record.id,
        sha256=stored.sha256,
        size=stored.size,
        content_type=stored.content_type,
        filename=safe_filename(filename),
        uploaded_by=principal.name,
    )
    session.add(attachment)
    await session.flush()
    audit.note(session, attachment_id=str(attachment.id), sha256=stored.sha256)
    return attachment


async def get_attachment(
    session: AsyncSession, principal: Principal, record_id: uuid.UUID, attachment_id: uuid.UUID
) -> RecordAttachment:
    """An attachment of a record the caller may see; 404 otherwise."""
    record = await _readable(session, principal, record_id)
    attachment = await session.scalar(
        select(RecordAttachment).where(
            RecordAttachment.id == attachment_id, RecordAttachment.record_id == record.id
        )
    )
    if attachment is None:
        raise Problem(404, "not_found", "Not found", "No such attachment.")
    return attachment
