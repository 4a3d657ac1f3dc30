"""The live event stream: the caller's new notifications, as server-sent events."""

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.auth.principal import PrincipalDep
from app.errors import forbidden
from app.events import stream_response

router = APIRouter(tags=["notifications"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
    name="notification.stream",
)
async def event_stream(request: Request, principal: PrincipalDep) -> StreamingResponse:
    """A `text/event-stream` of the caller's new notifications, from every app process.

    It opens with a `: connected` comment once the stream is subscribed. Each new
    notification comes as `id: <notification id>`, `event: notification` and `data:` its
    JSON (as in `GET /api/v1/notifications`); a `: keepalive` comment is sent after 15 s
    (CROSSINTEL_EVENTS_KEEPALIVE_SECONDS) without one. The account is checked again before
    anything is sent: the stream ends once the account is disabled or the token revoked,
    and when the token expires (reconnect with a fresh one).

    Delivery is best effort (a notification made while this process was reconnecting to
    the database can be missed): on (re)connecting, read `GET /api/v1/notifications`,
    which is the reference. Service clients receive no notifications: 403.
    """
    if principal.kind != "user":
        raise forbidden("Service clients receive no notifications; this stream is for people.")
    return stream_response(request, principal, request.state.token_expires_at)
