"""Deconfliction hits, requests for access to the other side's item, and the selectors
excluded from matching (admins)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.schemas.deconfliction import (
    AccessDecisionIn,
    AccessRequestIn,
    AccessRequestOut,
    ExclusionIn,
    ExclusionOut,
    HitOut,
    HitPage,
    SelectorType,
)
from app.services import deconfliction as deconfliction_service

router = APIRouter(prefix="/deconfliction", tags=["deconfliction"])
admin_router = APIRouter(prefix="/admin/deconfliction", tags=["admin"])


@router.get("/hits", response_model=HitPage, name="hit.list")
async def list_hits(
    session: SessionDep,
    principal: PrincipalDep,
    kind: Literal["exact", "possible"] | None = None,
    selector_type: SelectorType | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> HitPage:
    """The hits on the caller's side, newest first: another unit, another agency or a
    case holds a selector the caller's side filed. Each shows the selector type, its
    value masked, and the other side's unit, agency, contact (its supervisors), first
    filing date and kind of item — never its content. `possible` hits are persons born
    the same day with similar names."""
    items, next_cursor = await deconfliction_service.list_hits(
        session, principal, kind=kind, selector_type=selector_type, limit=limit, cursor=cursor
    )
    return HitPage(items=items, next_cursor=next_cursor)


@router.get("/hits/{hit_id}", response_model=HitOut, name="hit.read")
async def get_hit(hit_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> HitOut:
    """One hit, as the caller's side sees it."""
    return await deconfliction_service.get_hit(session, principal, hit_id)


@router.post(
    "/hits/{hit_id}/access-requests",
    response_model=AccessRequestOut,
    status_code=201,
    name="hit.request_access",
)
async def request_access(
    hit_id: uuid.UUID, body: AccessRequestIn, session: SessionDep, principal: PrincipalDep
) -> AccessRequestOut:
    """Ask the other side's supervisors for access to their record or case, saying why.
    They are notified; one pending request per hit and person (409 otherwise)."""
    return await deconfliction_service.request_access(
        session, principal, hit_id, body.justification
    )


@router.get("/access-requests", response_model=list[AccessRequestOut], name="access_request.list")
async def list_access_requests(
    session: SessionDep,
    principal: PrincipalDep,
    status: Literal["pending", "approved", "declined"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> list[AccessRequestOut]:
    """The caller's own requests and those addressed to the units it supervises, newest
    first."""
    return await deconfliction_service.list_access_requests(
        session, principal, status=status, limit=limit
    )


@router.post(
    "/access-requests/{access_request_id}/decision",
    response_model=AccessRequestOut,
    name="access_request.decide",
)
async def decide_access(
    access_request_id: uuid.UUID,
    body: AccessDecisionIn,
    session: SessionDep,
    principal: PrincipalDep,
) -> AccessRequestOut:
    """The supervisors of the unit holding the item decide: `approve` with `expires_at`
    opens that record (for the requester only; for an H2 record this is the originating
    unit's consent) or that case (as an observer on its team) until then; `decline`.
    A record restricted to its agency cannot be opened to another agency (409)."""
    return await deconfliction_service.decide_access(
        session, principal, access_request_id, body.decision, body.expires_at, body.note
    )


@admin_router.get("/exclusions", response_model=list[ExclusionOut], name="exclusion.list")
async def list_exclusions(session: SessionDep, principal: PrincipalDep) -> list[ExclusionOut]:
    """Selectors that raise no hit (admins)."""
    return await deconfliction_service.list_exclusions(session, principal)


@admin_router.post(
    "/exclusions", response_model=ExclusionOut, status_code=201, name="exclusion.create"
)
async def add_exclusion(
    body: ExclusionIn, session: SessionDep, principal: PrincipalDep
) -> ExclusionOut:
    """Exclude a selector from matching, with the reason (a switchboard, a hotline, a
    test number). The value is normalised as when filed (`01 40 00 00 00`)."""
    exclusion = await deconfliction_service.add_exclusion(
        session, principal, body.type, body.value, body.reason
    )
    return ExclusionOut.model_validate(exclusion)


@admin_router.delete("/exclusions/{exclusion_id}", status_code=204, name="exclusion.delete")
async def remove_exclusion(
    exclusion_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Let a selector raise hits again (admins)."""
    await deconfliction_service.remove_exclusion(session, principal, exclusion_id)
    return Response(status_code=204)
