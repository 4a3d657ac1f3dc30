"""Notifications: only their recipient sees them, the NOTIFY announcing them rides the
acting transaction, and the live stream carries them from any app process to the one
holding the stream."""

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from app.events import QUEUE_SIZE, EventHub
from app.main import create_app
from app.models import Notification
from app.services.notifications import CHANNEL, TITLE_MAX, notify
from tests.conftest import escalated_case, sign_in, user_headers, web_sign_in

API = "/api/v1"
ROOT = Path(__file__).resolve().parent.parent
WAIT = 15


async def notify_committed(db, user_ids, title="Vous êtes chef d'enquête", **kwargs):
    async with db.sessionmaker() as session, session.begin():
        return await notify(session, user_ids, "case_assigned", title, **kwargs)


async def raw_notify(db, payload: str) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(text("select pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


async def fresh_user(client, new_user) -> tuple[uuid.UUID, dict[str, str]]:
    """A new CROSS-13 officer, with nothing addressed to them yet: (id, headers)."""
    user, password = await new_user()
    return uuid.UUID(user["id"]), await user_headers(client, user, password)


async def test_a_notification_reaches_its_recipient_only(client, auth, new_user, db):
    x_id, x = await fresh_user(client, new_user)
    _, y = await fresh_user(client, new_user)
    case_id, escalation_id = uuid.uuid4(), uuid.uuid4()
    [sent] = await notify_committed(
        db, [x_id], body="Filière conteneurs Fos", case_id=case_id, escalation_id=escalation_id
    )

    listed = await client.get(f"{API}/notifications", headers=x)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert listed.json()["next_cursor"] is None
    assert {k: v for k, v in item.items() if k != "created_at"} == {
        "id": str(sent.id),
        "kind": "case_assigned",
        "title": "Vous êtes chef d'enquête",
        "body": "Filière conteneurs Fos",
        "case_id": str(case_id),
        "escalation_id": str(escalation_id),
        "hit_id": None,
        "operation_id": None,
        "read_at": None,
    }

    assert (await client.get(f"{API}/notifications", headers=y)).json() == {
        "items": [],
        "next_cursor": None,
    }
    stolen = await client.post(f"{API}/notifications/{sent.id}/read", headers=y)
    assert stolen.status_code == 404
    assert stolen.json()["code"] == "not_found"
    assert (await client.post(f"{API}/notifications/read-all", headers=y)).json() == {
        "marked_read": 0
    }

    service = await auth("douane-dnred")
    assert (await client.get(f"{API}/notifications", headers=service)).json()["items"] == []
    assert (
        await client.post(f"{API}/notifications/{sent.id}/read", headers=service)
    ).status_code == 404

    [item] = (await client.get(f"{API}/notifications", headers=x)).json()["items"]
    assert item["read_at"] is None


async def test_notify_writes_one_per_recipient_and_cuts_long_titles(client, new_user, db):
    x_id, x = await fresh_user(client, new_user)
    y_id, _ = await fresh_user(client, new_user)
    sent = await notify_committed(db, [x_id, y_id, x_id], "é" * (TITLE_MAX + 50))
    assert sorted(n.user_id for n in sent) == sorted([x_id, y_id])
    [item] = (await client.get(f"{API}/notifications", headers=x)).json()["items"]
    assert item["title"] == "é" * (TITLE_MAX - 1) + "…"
    assert await notify_committed(db, []) == []


async def test_unread_filter_and_marking_read(client, new_user, db):
    user_id, headers = await fresh_user(client, new_user)
    first, second, third = [
        (await notify_committed(db, [user_id], f"Tâche {i}"))[0] for i in range(3)
    ]

    read = await client.post(f"{API}/notifications/{second.id}/read", headers=headers)
    assert read.status_code == 200, read.text
    read_at = read.json()["read_at"]
    assert read_at is not None
    again = await client.post(f"{API}/notifications/{second.id}/read", headers=headers)
    assert again.json()["read_at"] == read_at
    missing = await client.post(f"{API}/notifications/{uuid.uuid4()}/read", headers=headers)
    assert missing.status_code == 404

    async def ids(**params) -> list[str]:
        response = await client.get(f"{API}/notifications", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(unread="true") == [str(third.id), str(first.id)]
    assert await ids() == [str(third.id), str(second.id), str(first.id)]
    marked = await client.post(f"{API}/notifications/read-all", headers=headers)
    assert marked.json() == {"marked_read": 2}
    assert await ids(unread="true") == []
    assert len(await ids()) == 3
    again = await client.post(f"{API}/notifications/read-all", headers=headers)
    assert again.json() == {"marked_read": 0}


async def test_cursor_pagination(client, new_user, db):
    user_id, headers = await fresh_user(client, new_user)
    async with db.sessionmaker() as session, session.begin():
        for i in range(3):  # one transaction: the same created_at, ordered by id
            await notify(session, [user_id], "task_changed", f"Tâche {i}")
    for i in range(2):
        await notify_committed(db, [user_id], f"Dossier {i}")
    async with db.sessionmaker() as session:
        expected = [
            str(i)
            for i in await session.scalars(
                select(Notification.id)
                .where(Notification.user_id == user_id)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
            )
        ]
    assert len(expected) == 5

    seen, sizes, cursor = [], [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/notifications", params=params, headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert sizes == [2, 2, 1]

    bad = await client.get(
        f"{API}/notifications", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_the_announcement_is_sent_only_when_the_transaction_commits(
    app, client, new_user, db
):
    user_id, _ = await fresh_user(client, new_user)
    with app.state.events.subscribe(user_id) as queue:
        async with db.sessionmaker() as session:
            [dropped] = await notify(session, [user_id], "case_assigned", "Annulé")
            dropped_id = dropped.id
            await session.rollback()
        [kept] = await notify_committed(db, [user_id], "Confirmé")
        # PostgreSQL delivers in commit order: a leaked announcement would come first.
        assert await asyncio.wait_for(queue.get(), WAIT) == kept.id
        assert queue.empty()
    async with db.sessionmaker() as session:
        assert await session.get(Notification, dropped_id) is None


async def test_the_hub_skips_malformed_payloads_and_drops_the_oldest_on_overflow(app, db):
    hub = app.state.events
    flooded, sentinel = uuid.uuid4(), uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(QUEUE_SIZE + 3)]
    with hub.subscribe(flooded) as queue, hub.subscribe(sentinel) as done:
        async with db.sessionmaker() as session, session.begin():
            for payload in [
                "not json",
                json.dumps([1]),
                json.dumps({"user_id": "x"}),
                *(json.dumps({"user_id": str(flooded), "notification_id": str(i)}) for i in ids),
            ]:
                await session.execute(
                    text("select pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload}
                )
        await raw_notify(
            db, json.dumps({"user_id": str(sentinel), "notification_id": str(uuid.uuid4())})
        )
        await asyncio.wait_for(done.get(), WAIT)  # everything before it was dispatched
        held = [queue.get_nowait() for _ in range(queue.qsize())]
    assert held == ids[3:]


async def test_the_hub_reconnects_when_its_connection_drops(app, db):
    async with db.sessionmaker() as session, session.begin():
        killed = await session.scalar(
            text(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where application_name = :name and datname = current_database()"
            ),
            {"name": f"crossintel-events/{os.getpid()}"},
        )
    assert killed == 1
    user_id, notification_id = uuid.uuid4(), uuid.uuid4()
    payload = json.dumps({"user_id": str(user_id), "notification_id": str(notification_id)})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    with app.state.events.subscribe(user_id) as queue:
        while True:  # announcements made while it reconnects are lost: repeat until heard
            await raw_notify(db, payload)
            try:
                assert await asyncio.wait_for(queue.get(), 0.5) == notification_id
                break
            except TimeoutError:
                assert loop.time() < deadline, "the hub did not listen again"


def _local_socket_dir(setting: str) -> str | None:
    return next(
        (d for d in (d.strip() for d in setting.split(",")) if d and os.path.isdir(d)), None
    )


async def test_a_hub_listens_through_a_unix_socket(database_url, db):
    """The embedded server is reached by a unix socket named in the URL's query
    (`postgresql+asyncpg://postgres@/db?host=/socket/dir`): the hub connects that way too."""
    async with db.sessionmaker() as session:
        socket_dir = _local_socket_dir(await session.scalar(text("show unix_socket_directories")))
    if socket_dir is None:
        pytest.skip("the test server has no unix socket on this machine")
    url = make_url(database_url).set(host=None, port=None, query={"host": socket_dir})
    hub = EventHub(url.render_as_string(hide_password=False))
    await hub.start()
    try:
        user_id, notification_id = uuid.uuid4(), uuid.uuid4()
        with hub.subscribe(user_id) as queue:
            await raw_notify(
                db, json.dumps({"user_id": str(user_id), "notification_id": str(notification_id)})
            )
            assert await asyncio.wait_for(queue.get(), WAIT) == notification_id
    finally:
        await hub.stop()


async def test_service_clients_have_no_event_stream(client, auth):
    response = await client.get(f"{API}/events", headers=await auth("douane-dnred"))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


# Two app processes on the test database ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.asgi_app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_ready(process: subprocess.Popen, base_url: str, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while True:
            assert process.poll() is None, f"the server exited:\n{_read(log)}"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            assert loop.time() < deadline, f"the server never got ready:\n{_read(log)}"
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def servers(database_url, settings, tmp_path_factory) -> AsyncIterator[tuple[str, str]]:
    """Processes A and B serving the test database, with 1 s keepalives: their base URLs."""
    folder = tmp_path_factory.mktemp("servers")
    env = os.environ | {
        "CROSSINTEL_ENV": "test",
        "CROSSINTEL_DATABASE_URL": database_url,
        "CROSSINTEL_SIGNING_KEY": settings.signing_key.get_secret_value(),
        "CROSSINTEL_DATA_DIR": str(folder),
        "CROSSINTEL_EVENTS_KEEPALIVE_SECONDS": "1",
    }
    started: list[tuple[subprocess.Popen, str, Path]] = []
    try:
        for name in ("a", "b"):
            port, log = _free_port(), folder / f"{name}.log"
            started.append((_spawn(port, env, log), f"http://127.0.0.1:{port}", log))
        for process, base_url, log in started:
            await _wait_ready(process, base_url, log)
        yield started[0][1], started[1][1]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


class EventStream:
    """The blocks of a text/event-stream (lines up to a blank line), as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def block(self) -> list[str] | None:
        """The next block, or None once the server has ended the stream."""
        lines: list[str] = []
        async for line in self._lines:
            if line:
                lines.append(line)
            elif lines:
                return lines
        return None

    async def event(self) -> dict[str, str]:
        """The next event's fields, comments skipped."""
        while True:
            block = await self.block()
            assert block is not None, "the stream ended"
            fields = dict(line.split(": ", 1) for line in block if not line.startswith(":"))
            if fields:
                return fields


@contextlib.asynccontextmanager
async def open_stream(
    base_url: str, headers: dict[str, str]
) -> AsyncIterator[tuple[httpx.Response, EventStream]]:
    """GET /events, returned once the stream says it is subscribed."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=WAIT) as http,
        http.stream("GET", f"{API}/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        stream = EventStream(response)
        assert await asyncio.wait_for(stream.block(), WAIT) == [": connected"]
        yield response, stream


async def test_a_notification_made_elsewhere_reaches_the_stream(servers, client, auth, db):
    """The stream is on A; the notifications are made by this test process, then by B:
    they reach A through PostgreSQL."""
    a, b = servers
    police = await auth("cross13.police")
    police_id = (await client.get(f"{API}/me", headers=police)).json()["id"]
    async with open_stream(a, police) as (response, stream):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"

        [sent] = await notify_committed(db, [uuid.UUID(police_id)], body="Filière Fos")
        event = await asyncio.wait_for(stream.event(), WAIT)
        assert (event["id"], event["event"]) == (str(sent.id), "notification")
        data = json.loads(event["data"])
        assert (data["id"], data["title"], data["body"], data["read_at"]) == (
            str(sent.id),
            "Vous êtes chef d'enquête",
            "Filière Fos",
            None,
        )

        async with httpx.AsyncClient(base_url=b, timeout=WAIT) as http_b:
            opened = await http_b.post(
                f"{API}/cases",
                json={"title": "Filière conteneurs Fos", "lead_user_id": police_id},
                headers=await auth("cross13.chef"),
            )
        assert opened.status_code == 201, opened.text
        event = await asyncio.wait_for(stream.event(), WAIT)
        data = json.loads(event["data"])
        assert (data["kind"], data["case_id"]) == ("case_assigned", opened.json()["id"])
        assert event["id"] == data["id"]


async def test_a_stream_never_carries_another_users_notification(servers, client, new_user, db):
    a, b = servers
    x_id, x = await fresh_user(client, new_user)
    y_id, y = await fresh_user(client, new_user)
    async with open_stream(a, x) as (_, x_stream), open_stream(b, y) as (_, y_stream):
        [for_y] = await notify_committed(db, [y_id], "Pour Y")
        # A forged announcement naming X with Y's notification: read by id and recipient,
        # it yields nothing.
        await raw_notify(db, json.dumps({"user_id": str(x_id), "notification_id": str(for_y.id)}))
        [for_x] = await notify_committed(db, [x_id], "Pour X")
        assert (await asyncio.wait_for(y_stream.event(), WAIT))["id"] == str(for_y.id)
        assert (await asyncio.wait_for(x_stream.event(), WAIT))["id"] == str(for_x.id)


async def test_keepalives_and_no_transaction_held_for_the_stream(servers, auth, db):
    a, _ = servers
    async with db.sessionmaker() as session:
        opened_at = await session.scalar(text("select clock_timestamp()"))
    async with open_stream(a, await auth("cross83.police")) as (_, stream):
        for _ in range(3):
            assert await asyncio.wait_for(stream.block(), WAIT) == [": keepalive"]
        async with db.sessionmaker() as session:
            held = await session.scalar(
                text(
                    "select count(*) from pg_stat_activity where datname = current_database()"
                    " and state like 'idle in transaction%' and xact_start >= :opened_at"
                    " and state_change < now() - interval '2 seconds'"
                ),
                {"opened_at": opened_at},
            )
    assert held == 0


async def test_the_stream_ends_once_the_account_is_disabled(servers, client, auth, new_user, db):
    a, _ = servers
    user_id, headers = await fresh_user(client, new_user)
    async with open_stream(a, headers) as (_, stream):
        disabled = await client.patch(
            f"{API}/admin/users/{user_id}", json={"is_active": False}, headers=await auth("admin")
        )
        assert disabled.status_code == 200, disabled.text
        await notify_committed(db, [user_id], "Après la désactivation")
        blocks = []
        while (block := await asyncio.wait_for(stream.block(), WAIT)) is not None:
            blocks.append(block)
    assert all(line.startswith(":") for block in blocks for line in block), blocks


async def test_the_stream_ends_when_its_token_expires(settings, db, new_user, client):
    """A stream opened with a short-lived token ends at the token's expiry (the client
    reconnects with a fresh token); it does not outlive it."""
    short = create_app(
        settings.model_copy(
            update={"access_token_ttl_seconds": 2, "events_keepalive_seconds": 0.5}
        ),
        db=db,
    )
    user, password = await new_user()
    transport = httpx.ASGITransport(app=short)
    async with (
        short.router.lifespan_context(short),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as other,
    ):
        token = (await sign_in(other, user["username"], password))["access_token"]
        response = await asyncio.wait_for(
            other.get(f"{API}/events", headers={"Authorization": f"Bearer {token}"}), WAIT
        )
    assert response.status_code == 200
    assert response.text.startswith(": connected")


# The web client's stream: the same notifications, authenticated by the session cookie.


async def test_the_web_stream_delivers_to_the_signed_in_browser(servers, client, auth):
    """The dashboard's stream (/evenements, by cookie) hears a notification made through
    the API by another process."""
    a, _ = servers
    browser = await web_sign_in(None, "marseille.chef", base_url=a)
    chef = await auth("cross13.chef")
    try:
        async with browser.client.stream("GET", "/evenements") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = EventStream(response)
            assert await asyncio.wait_for(stream.block(), WAIT) == [": connected"]
            case = await escalated_case(client, chef, "Réseau cannabis Noailles")
            event = await asyncio.wait_for(stream.event(), WAIT)
        data = json.loads(event["data"])
        assert (event["event"], data["kind"]) == ("notification", "escalation_requested")
        assert data["case_id"] == case["id"]
    finally:
        await browser.client.aclose()


async def test_the_web_stream_ends_at_sign_out(servers):
    """Signing out ends the session's open streams (at the next check, 1 s here)."""
    a, _ = servers
    browser = await web_sign_in(None, "marseille.chef", base_url=a)
    try:
        async with browser.client.stream("GET", "/evenements") as response:
            stream = EventStream(response)
            assert await asyncio.wait_for(stream.block(), WAIT) == [": connected"]
            out = await browser.post("/deconnexion")
            assert out.status_code == 303
            while (block := await asyncio.wait_for(stream.block(), WAIT)) is not None:
                assert block == [": keepalive"]
    finally:
        await browser.client.aclose()
