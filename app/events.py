"""Live events: one LISTEN connection per process, fanned out to the open event streams.

`app.services.notifications.notify` sends a NOTIFY on the `crossintel_events` channel in
the acting transaction; PostgreSQL delivers it on commit to every listening process, so a
stream open on one process hears of an action taken on any other. Each process holds one
dedicated asyncpg connection doing LISTEN (outside the pool: a pooled connection would be
handed to requests) and passes each payload to the queues of the streams of the user it
names.

Delivery is best effort: a payload sent while the connection is down, or pushed out of a
slow stream's full queue, is lost. The notifications list is the reference; the stream
only says that something new arrived.
"""

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import make_url

from app.auth.principal import Principal, load_principal
from app.db import Database
from app.models import Notification
from app.schemas.notifications import NotificationOut
from app.services.notifications import CHANNEL, own_notification

log = logging.getLogger("crossintel.events")

QUEUE_SIZE = 100
CONNECT_TIMEOUT = 10.0
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the app's SQLAlchemy URL
    (`postgresql+asyncpg://…`). The embedded server is reached by a unix socket named in
    the query (`postgresql+asyncpg://postgres@/postgres?host=/socket/dir`), which asyncpg
    reads from the DSN as libpq does."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class EventHub:
    """This process's LISTEN connection and the queues of its open streams, by user."""

    def __init__(self, url: str, *, check_interval: float = 30.0) -> None:
        self._dsn = asyncpg_dsn(url)
        self._check_interval = check_interval
        self._queues: dict[uuid.UUID, set[asyncio.Queue[uuid.UUID]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    async def start(self) -> None:
        """Start listening in the background. Returns once the first connection attempt
        is over, so that a process that reports ready is already listening when its
        database is up; when it is not, the hub keeps retrying."""
        self._task = asyncio.create_task(self._run(), name="crossintel-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), CONNECT_TIMEOUT + 1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @contextlib.contextmanager
    def subscribe(self, user_id: uuid.UUID) -> Iterator[asyncio.Queue[uuid.UUID]]:
        """A queue of the ids of the user's new notifications, fed while the block runs.
        It is bounded: when a slow reader lets it fill, the oldest ids are dropped."""
        queue: asyncio.Queue[uuid.UUID] = asyncio.Queue(QUEUE_SIZE)
        self._queues.setdefault(user_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues[user_id]
            queues.discard(queue)
            if not queues:
                del self._queues[user_id]

    def _dispatch(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            user_id = uuid.UUID(str(data["user_id"]))
            notification_id = uuid.UUID(str(data["notification_id"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed event payload")
            return
        for queue in self._queues.get(user_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(notification_id)

    async def _run(self) -> None:
        """Listen; when the connection fails or is lost, reconnect with backoff."""
        backoff = MIN_BACKOFF
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": f"crossintel-events/{os.getpid()}"},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._dispatch)
                log.info("listening for events")
                backoff = MIN_BACKOFF
                self._first_attempt.set()
                await self._watch(connection, lost)
                log.warning("the event connection was closed; reconnecting")
            except Exception:
                log.warning(
                    "the event connection failed; reconnecting",
                    exc_info=True,
                    extra={"retry_in_s": backoff},
                )
                self._first_attempt.set()
            finally:
                if connection is not None:
                    connection.terminate()
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, MAX_BACKOFF)

    async def _watch(self, connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the server closes the connection; raise when it stops answering
        (a half-open connection would otherwise go unnoticed)."""
        while True:
            try:
                await asyncio.wait_for(lost.wait(), self._check_interval)
                return
            except TimeoutError:
                await connection.fetchval("select 1", timeout=CONNECT_TIMEOUT)


def _event(notification: Notification) -> bytes:
    data = NotificationOut.model_validate(notification).model_dump_json()
    return f"id: {notification.id}\nevent: notification\ndata: {data}\n\n".encode()


async def notification_stream(
    db: Database, hub: EventHub, principal: Principal, keepalive: float, until: datetime
) -> AsyncIterator[bytes]:
    """A user's new notifications as server-sent events.

    It opens with a `: connected` comment once subscribed (what follows is heard), then
    sends each new notification, and a `: keepalive` comment after `keepalive` seconds
    without one. Before anything is sent, the account is checked afresh (active, token
    not revoked) in a short session of its own; the stream ends when the check fails. The
    notification is read by id and recipient, so a payload naming one user never yields
    another's notification. The stream ends when the access token it was opened with
    expires (`until`): the client reconnects with a fresh token.
    """
    with hub.subscribe(principal.id) as queue:
        yield b": connected\n\n"
        while (left := (until - datetime.now(UTC)).total_seconds()) > 0:
            try:
                notification_id = await asyncio.wait_for(queue.get(), min(keepalive, left))
            except TimeoutError:
                notification_id = None
            async with db.sessionmaker() as session:
                subject = f"user:{principal.id}"
                if (
                    await load_principal(
                        session, subject, principal.token_jti, issued_at=principal.token_issued_at
                    )
                    is None
                ):
                    return
                notification = (
                    await own_notification(session, principal.id, notification_id)
                    if notification_id is not None
                    else None
                )
            if notification_id is None:
                yield b": keepalive\n\n"
            elif notification is not None:
                yield _event(notification)


def stream_response(request: Request, principal: Principal, until: datetime) -> StreamingResponse:
    """The HTTP answer carrying a user's notification stream until `until` (the end of the
    token or web session it was opened with): the API's /events and the web client's."""
    state = request.app.state
    stream = notification_stream(
        state.db, state.events, principal, state.settings.events_keepalive_seconds, until
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
