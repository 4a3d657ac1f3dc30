"""Tableau de bord: what an officer or a supervisor needs at a glance, kept live by the
event stream."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from app.db import SessionDep
from app.events import stream_response
from app.services import cases as cases_service
from app.services import deconfliction as deconfliction_service
from app.services import escalations as escalations_service
from app.services import notifications as notifications_service
from app.services import records as records_service
from app.web.pages import render
from app.web.session import WebPrincipalDep, WebWatcherDep

router = APIRouter()
# Its routes read without counting as activity (see require_web_watcher).
watch_router = APIRouter()

LATEST = 10


@router.get("/", name="dashboard.read", include_in_schema=False)
async def dashboard(
    request: Request, session: SessionDep, principal: WebPrincipalDep
) -> HTMLResponse:
    """My units' latest records, my cases, my notifications, the deconfliction hits on my
    side and, for those who review escalations, the pending ones (overdue flagged). Every
    list comes from the same services, and so the same policy, as the API."""
    records = []
    for unit_id in principal.unit_ids:
        found, _, _ = await records_service.search_records(
            session, principal, records_service.SearchParams(unit_id=unit_id, limit=LATEST)
        )
        records.extend(found)
    records.sort(key=lambda r: r.created_at, reverse=True)
    cases, _ = await cases_service.search_cases(
        session,
        principal,
        q=None,
        status=None,
        priority=None,
        unit_id=None,
        limit=LATEST,
        cursor=None,
    )
    notifications, _ = await notifications_service.list_notifications(
        session, principal, unread_only=False, limit=LATEST, cursor=None
    )
    hits, _ = await deconfliction_service.list_hits(
        session, principal, kind=None, selector_type=None, limit=LATEST, cursor=None
    )
    pending, _ = await escalations_service.queue(
        session, principal, status="pending", include_descendants=False, limit=LATEST, cursor=None
    )
    return render(
        request,
        "dashboard.html",
        {
            "records": records[:LATEST],
            "cases": cases,
            "notifications": notifications,
            "hits": hits,
            "pending": pending,
            "reviews_escalations": any(m.role == "supervisor" for m in principal.memberships),
        },
    )


@watch_router.get("/evenements", name="notification.stream", include_in_schema=False)
async def events(request: Request, principal: WebWatcherDep) -> StreamingResponse:
    """The signed-in user's new notifications as server-sent events (the stream of
    `GET /api/v1/events`). Reading it is not activity: the stream ends when the session
    would end for idleness, and on sign-out; the page then goes back to sign-in."""
    return stream_response(request, principal, request.state.session_ends_at)
