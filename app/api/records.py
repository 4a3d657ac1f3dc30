"""Intelligence records: file, read, edit, history, search, attachments.

Every path answers 404 for a record the caller may not see, exactly as for one that does
not exist.
"""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from app.api.purpose import PurposeDep
from app.auth.principal import PrincipalDep
from app.concurrency import etag
from app.db import SessionDep
from app.downloads import attachment_response
from app.schemas.audit import AccessLogPage
from app.schemas.records import (
    AttachmentOut,
    DrugType,
    HandlingCode,
    RecordCreate,
    RecordOut,
    RecordPage,
    RecordUpdate,
    RecordVersionOut,
    Reliability,
)
from app.schemas.reviews import ReviewIn, ReviewOut
from app.services import audit as audit_service
from app.services import records as records_service
from app.services import reviews as reviews_service
from app.storage import FileStore

router = APIRouter(prefix="/records", tags=["records"])


@router.post("", response_model=RecordOut, status_code=201, name="record.create")
async def file_record(
    body: RecordCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> RecordOut:
    """File a record. The origin unit is the caller's (name `unit_id` only when a member
    of several); author and agency come from the caller. Entities are validated and
    normalised (phone E.164, IBAN, ISO 6346 container, IMO…); an invalid identifier is a
    422 pointing at the entity and field, and nothing is stored. SECRET and TRES_SECRET
    markings are refused: the service is not accredited for classified information."""
    record = await records_service.create_record(
        session, principal, body, request.app.state.settings
    )
    response.headers["Location"] = str(request.url_for("record.read", record_id=record.id))
    response.headers["ETag"] = etag(record.version)
    return await records_service.record_out(session, record)


@router.get("", response_model=RecordPage, name="record.search")
async def search_records(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str | None, Query(max_length=500, description="French full text")] = None,
    selector: Annotated[str | None, Query(max_length=200, description="Any identifier")] = None,
    person: Annotated[
        str | None, Query(max_length=200, description="`Surname` or `Surname, Given names`")
    ] = None,
    drug_type: DrugType | None = None,
    unit_id: uuid.UUID | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    source_reliability: Reliability | None = None,
    handling_code: HandlingCode | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
    facets: bool = False,
    purpose: PurposeDep = None,
) -> RecordPage:
    """Search the records the caller may see, newest first, by cursor.

    `q` is French full text over title, narrative and entity names, accent- and
    case-insensitive; `selector` is any identifier, normalised as when filed
    (`06 12 34 56 78` finds `+33612345678`). `facets=true` adds counts by drug type, unit
    and month over every visible match.

    Searching by `selector` or `person` needs a purpose of access (428 otherwise): the
    `X-Purpose` header or `purpose` parameter, holding the reference of a case you can
    see or a justification of at least 10 characters."""
    params = records_service.SearchParams(
        q=q,
        selector=selector,
        person=person,
        drug_type=drug_type,
        unit_id=unit_id,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        source_reliability=source_reliability,
        handling_code=handling_code,
        limit=limit,
        cursor=cursor,
        facets=facets,
    )
    items, next_cursor, counted = await records_service.search_records(session, principal, params)
    return RecordPage(items=items, next_cursor=next_cursor, facets=counted)


@router.get("/{record_id}", response_model=RecordOut, name="record.read")
async def get_record(
    record_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    purpose: PurposeDep = None,
) -> RecordOut:
    """One record, with its ETag (send it back in If-Match to change the record).

    A record you see only through a grant (a case, an escalation, an approved access
    request) needs a purpose of access: `X-Purpose` (428 otherwise). 410 once purged."""
    record = await records_service.get_record(session, principal, record_id)
    response.headers["ETag"] = etag(record.version)
    return await records_service.record_out(session, record)


@router.patch("/{record_id}", response_model=RecordOut, name="record.update")
async def update_record(
    record_id: uuid.UUID,
    body: RecordUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: Annotated[str | None, Header()] = None,
) -> RecordOut:
    """Change a record (origin unit only), making a new version. Requires If-Match: 428
    without it, 412 when the record changed since. Scope may be widened by the author or
    a supervisor, narrowed only by a supervisor. Records are never deleted."""
    record = await records_service.update_record(
        session, principal, record_id, body, if_match, request.app.state.settings
    )
    response.headers["ETag"] = etag(record.version)
    return await records_service.record_out(session, record)


@router.get("/{record_id}/history", response_model=list[RecordVersionOut], name="record.history")
async def record_history(
    record_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, purpose: PurposeDep = None
) -> list[RecordVersionOut]:
    """Every version of the record: who changed it, when, and what it then said (a
    purpose of access as for reading it)."""
    versions = await records_service.history(session, principal, record_id)
    return [
        RecordVersionOut(
            version=v.version, changed_by=v.changed_by, changed_at=v.changed_at, snapshot=v.snapshot
        )
        for v in versions
    ]


@router.post(
    "/{record_id}/attachments",
    response_model=AttachmentOut,
    status_code=201,
    name="record.attachment.upload",
)
async def add_attachment(
    record_id: uuid.UUID,
    file: UploadFile,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> AttachmentOut:
    """Attach a file (multipart field `file`). Stored by SHA-256; the type is sniffed from
    the content and checked against an allow-list (415 otherwise); 413 beyond the size
    limit (25 MB by default), leaving nothing on disk."""
    settings = request.app.state.settings
    attachment = await records_service.add_attachment(
        session,
        principal,
        record_id,
        FileStore(settings.data_dir),
        file,
        file.filename,
        settings.attachment_max_bytes,
    )
    return AttachmentOut.model_validate(attachment)


@router.get("/{record_id}/attachments/{attachment_id}", name="record.attachment.download")
async def download_attachment(
    record_id: uuid.UUID,
    attachment_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    purpose: PurposeDep = None,
) -> StreamingResponse:
    """Download an attachment, always as a download (never rendered inline); a purpose
    of access as for reading the record."""
    attachment = await records_service.get_attachment(session, principal, record_id, attachment_id)
    return attachment_response(FileStore(request.app.state.settings.data_dir), attachment)


@router.get("/{record_id}/access-log", response_model=AccessLogPage, name="record.access_log")
async def record_access_log(
    record_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: str | None = None,
) -> AccessLogPage:
    """Who consulted or changed this record, when, and why (the purpose they gave),
    newest first — for the supervisors of its origin unit and for auditors."""
    items, next_cursor = await audit_service.access_log(
        session, principal, record_id, limit=limit, cursor=cursor
    )
    return AccessLogPage(items=items, next_cursor=next_cursor)


@router.post("/{record_id}/review", response_model=ReviewOut, name="record.review")
async def review_record(
    record_id: uuid.UUID,
    body: ReviewIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> ReviewOut:
    """A supervisor of the origin unit decides on a record: `keep` (due for review again
    after another period) or `purge` (the next retention run removes its content and
    keeps a tombstone). The justification is kept with the decision and in the audit
    trail."""
    settings = request.app.state.settings
    decided, record = await reviews_service.review(
        session, principal, settings, record_id, body.decision, body.justification
    )
    return ReviewOut(
        record_id=record_id,
        decision=decided.decision,
        justification=decided.justification,
        decided_by=decided.decided_by,
        decided_at=decided.decided_at,
        review_at=record.review_at,
        purge_decided_at=record.purge_decided_at,
    )
