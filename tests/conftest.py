"""Test fixtures: a fresh database per run on a real PostgreSQL.

The server is CROSSINTEL_TEST_DATABASE_URL when set (a database named crossintel_test_<random>
is created there and dropped at the end), else an embedded PostgreSQL in a temporary folder.
The schema is built by `alembic upgrade head`, and the demo data is loaded.
"""

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import Database, embedded_url, migrate_async, stop_embedded
from app.main import create_app
from app.services.demo import load_demo
from app.settings import Settings

DEMO_PASSWORD = "crossintel-demo-test"
DEMO_CLIENT_SECRET = "crossintel-demo-client-test"
ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 180  # a safety net against a hung command, not a measurement


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new, empty database named `<prefix>_<random>` on the server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def server_url() -> AsyncIterator[str]:
    """The test server: CROSSINTEL_TEST_DATABASE_URL, else an embedded PostgreSQL."""
    url = os.environ.get("CROSSINTEL_TEST_DATABASE_URL")
    if url:
        yield url
        return
    tmp = tempfile.mkdtemp(prefix="crossintel-test-")
    try:
        yield embedded_url(Path(tmp))
    finally:
        stop_embedded()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """The run's own database, migrated to head."""
    async with fresh_database(server_url, "crossintel_test") as url:
        await migrate_async(url)
        yield url


@pytest.fixture
async def scratch_url(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped after the test."""
    async with fresh_database(server_url, "crossintel_scratch") as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        demo_password=DEMO_PASSWORD,
        demo_client_secret=DEMO_CLIENT_SECRET,
        signing_key="test-signing-key-0123456789abcdef0123456789",
    )


@pytest.fixture(scope="session")
async def db(database_url: str, settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.sessionmaker() as session, session.begin():
        await load_demo(session, settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings, db: Database):
    application = create_app(settings, db=db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def sign_in(client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> dict:
    """Password grant; returns the token answer (asserting success)."""
    response = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def user_headers(client: httpx.AsyncClient, user: dict, password: str) -> dict[str, str]:
    """Authorization headers of an account of its own (as new_user makes), signed in."""
    token = (await sign_in(client, user["username"], password))["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
async def auth(client: httpx.AsyncClient):
    """auth(username) -> Authorization headers for a demo persona (tokens cached per run)."""
    cache: dict[str, dict[str, str]] = {}

    async def headers(username: str) -> dict[str, str]:
        if username not in cache:
            if username == "douane-dnred":
                response = await client.post(
                    "/api/v1/auth/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": username,
                        "client_secret": DEMO_CLIENT_SECRET,
                    },
                )
                assert response.status_code == 200, response.text
                token = response.json()["access_token"]
            else:
                token = (await sign_in(client, username))["access_token"]
            cache[username] = {"Authorization": f"Bearer {token}"}
        return cache[username]

    return headers


async def add_membership(
    client: httpx.AsyncClient, admin: dict, user_id: str, unit_id: str, role: str = "officer"
) -> None:
    """Make the user a member of the unit (an admin's call)."""
    response = await client.put(
        f"/api/v1/admin/users/{user_id}/memberships",
        headers=admin,
        json={"unit_id": unit_id, "role": role},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
async def new_user(client: httpx.AsyncClient, auth):
    """new_user(agency, unit_code, role) -> (user json, password): a fresh account of its own."""

    async def make(
        agency: str = "police", unit_code: str | None = "CROSS-13", role: str = "officer"
    ) -> tuple[dict, str]:
        admin = await auth("admin")
        password = "a-long-test-password-" + uuid.uuid4().hex[:6]
        response = await client.post(
            "/api/v1/admin/users",
            headers=admin,
            json={
                "username": f"t.{uuid.uuid4().hex[:10]}",
                "display_name": "Test user",
                "agency": agency,
                "password": password,
            },
        )
        assert response.status_code == 201, response.text
        user = response.json()
        if unit_code:
            units = await unit_ids(client, admin)
            await add_membership(client, admin, user["id"], units[unit_code], role)
        return user, password

    return make


async def unit_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """Unit code -> id, flattened from the tree."""
    response = await client.get("/api/v1/units", headers=headers)
    assert response.status_code == 200, response.text
    out: dict[str, str] = {}

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            out[node["code"]] = node["id"]
            walk(node["children"])

    walk(response.json())
    return out


# --- shared helpers of the test files -------------------------------------------------


def record_body(
    title: str,
    *,
    narrative: str = "Réseau d'importation de cocaïne par conteneurs au Grand Port Maritime.",
    occurred_at: str = "2026-09-01T10:00:00+02:00",
    **changes: Any,
) -> dict[str, Any]:
    """The JSON of a valid record (cocaine, Marseille), with `changes` over it."""
    body = {
        "title": title,
        "narrative": narrative,
        "occurred_at": occurred_at,
        "location": {"commune": "Marseille", "departement": "13"},
        "drug_types": ["cocaine"],
        "source_reliability": "B",
        "information_assessment": 2,
    }
    body.update(changes)
    return body


async def escalated_case(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    title: str,
    justification: str = "Ramifications au-delà du département.",
    priority: str = "high",
) -> dict[str, Any]:
    """A case opened through the API and escalated to the unit above: the case's JSON."""
    case = await client.post("/api/v1/cases", headers=headers, json={"title": title})
    assert case.status_code == 201, case.text
    escalated = await client.post(
        f"/api/v1/cases/{case.json()['id']}/escalations",
        headers=headers,
        json={"justification": justification, "priority": priority},
    )
    assert escalated.status_code == 201, escalated.text
    return case.json()


# The story of the records of tests/test_records.py and tests/test_reviews.py: their
# record_body is functools.partial(record_body, **DELIVERY).
DELIVERY = {
    "narrative": "Livraison de cocaïne observée sur le parking du port.",
    "occurred_at": "2026-03-14T21:15:00+01:00",
}


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    label: str = "test",
    wait: float | None = None,
    **kwargs: Any,
) -> tuple[httpx.Response, str]:
    """One request with an X-Request-ID of its own (`<label>-test-<random>`), given up after
    `wait` seconds when set: the answer and that id."""
    request_id = f"{label}-test-{uuid.uuid4().hex}"
    response = await asyncio.wait_for(
        client.request(
            method, path, headers={**(headers or {}), "X-Request-ID": request_id}, **kwargs
        ),
        wait,
    )
    return response, request_id


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def events_of(db: Database, request_id: str) -> list[dict[str, Any]]:
    """The audit rows of one request, oldest first (UUIDs as strings)."""
    async with db.sessionmaker() as session:
        rows = await session.execute(
            text("select * from audit_events where request_id = :r order by id"),
            {"r": request_id},
        )
        return [{k: _plain(v) for k, v in row.items()} for row in rows.mappings()]


async def the_event(db: Database, request_id: str, action: str | None = None) -> dict[str, Any]:
    """The single audit row of one request (of those with `action`, when given)."""
    events = await events_of(db, request_id)
    matching = [e for e in events if action is None or e["action"] == action]
    assert len(matching) == 1, events
    return matching[0]


async def run_cli(
    url: str,
    data_dir: Path,
    *args: str,
    env: Mapping[str, str | None] | None = None,
    stdin: str | None = None,
    wait: float = CLI_TIMEOUT,
) -> tuple[int, str, str]:
    """`python -m app.cli ARGS` on the checkout under test, against the database at `url` with
    its files in `data_dir`: (exit code, stdout, stderr). No CROSSINTEL_ variable of this
    process is passed on; `env` sets more (a value of None removes the variable); the command
    is killed after `wait` seconds."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CROSSINTEL_")}
    environ.update(
        {
            "CROSSINTEL_DATABASE_URL": url,
            "CROSSINTEL_DATA_DIR": str(data_dir),
            "CROSSINTEL_ENV": "test",
        }
    )
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=environ,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else b""), wait
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


# --- the web client ---------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebUser:
    """A browser without a browser: an httpx client with a cookie jar of its own, signed
    in to the web client, that adds the session's CSRF token to the forms it posts."""

    def __init__(self, client: httpx.AsyncClient, csrf_token: str) -> None:
        self.client = client
        self.csrf_token = csrf_token

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(
        self, path: str, data: Mapping[str, Any] | list | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Post a form with the CSRF token. `data` is a mapping or a list of (name, value)
        pairs, which may repeat a name (checkboxes)."""
        pairs = list(data.items()) if isinstance(data, Mapping) else list(data or [])
        fields: dict[str, list[Any]] = {}
        for name, value in [*pairs, ("csrf_token", self.csrf_token)]:
            fields.setdefault(name, []).append(value)
        return await self.client.post(path, data=fields, **kwargs)


async def web_sign_in(
    app, username: str, password: str = DEMO_PASSWORD, base_url: str = "http://testserver"
) -> WebUser:
    """Sign in through the web form (asserting success) with a client of its own: to `app`
    in this process, or, with app=None, to the server at `base_url` (streams need one:
    httpx's ASGI transport hands a response over only once it is complete)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False) if app else None
    client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30)
    form = await client.get("/connexion")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', form.text).group(1)
    answer = await client.post(
        "/connexion",
        data={"username": username, "password": password, "sign_in_token": token, "next": "/"},
    )
    assert answer.status_code == 303, answer.text
    page = await client.get("/")
    assert page.status_code == 200, page.text
    return WebUser(client, CSRF_FIELD.search(page.text).group(1))


@pytest.fixture
async def web(app):
    """web(username) -> a WebUser signed in as that demo persona (closed after the test)."""
    opened: list[WebUser] = []

    async def open_as(username: str, password: str = DEMO_PASSWORD) -> WebUser:
        user = await web_sign_in(app, username, password)
        opened.append(user)
        return user

    yield open_as
    for user in opened:
        await user.client.aclose()
