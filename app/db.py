"""Database access: the engine, the per-request session, migrations and the embedded server.

With no CROSSINTEL_DATABASE_URL the service runs its own PostgreSQL from the `pgserver`
package, with its data under CROSSINTEL_DATA_DIR/pg. The server is stopped when the last
process using it exits.
"""

import asyncio
import json
import logging
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.settings import Settings

log = logging.getLogger("crossintel.db")

ROOT = Path(__file__).resolve().parent.parent

_embedded: dict[Path, Any] = {}


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    """Start (or join) the embedded PostgreSQL under data_dir/pg and return its asyncpg URL."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    pgdata = (data_dir / "pg").resolve()
    if pgdata not in _embedded:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(pgdata)
        log.info("starting embedded PostgreSQL", extra={"pgdata": str(pgdata)})
        _embedded[pgdata] = pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = make_url(_embedded[pgdata].get_uri()).query["host"]
    return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process holding it exits, counting holders
    in a pid list. A holder killed without running its exit handlers stays listed forever
    and the server would never stop: drop the pids of processes that are gone."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_embedded() -> None:
    """Stop the embedded servers this process started."""
    while _embedded:
        _, server = _embedded.popitem()
        server.cleanup()


def database_url(settings: Settings) -> str:
    return settings.database_url or embedded_url(settings.data_dir)


class Database:
    """The engine and session factory of one app or command."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            # Plan every execution with its parameters: a generic plan of a prepared search
            # ignores how rare the searched term is, and can take seconds instead of ms.
            connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def current_revision(self) -> str | None:
        async with self.engine.connect() as conn:
            exists = await conn.scalar(text("select to_regclass('alembic_version') is not null"))
            if not exists:
                return None
            return await conn.scalar(text("select version_num from alembic_version"))


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def migrate(url: str, revision: str = "head", *, down: bool = False) -> None:
    """Upgrade (or downgrade) the schema. Runs its own event loop: call it from a thread."""
    from alembic import command

    cfg = alembic_config(url)
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def migrate_async(url: str, revision: str = "head", *, down: bool = False) -> None:
    await asyncio.to_thread(migrate, url, revision, down=down)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent, with the
    request's audit event written in it just before the commit (app/services/audit.py)."""
    from app.services import audit  # imports the policy, which imports this module

    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        trail = audit.begin(session, audit.Trail.for_request(request))
        request.state.audit_trail = trail
        try:
            yield session
            await audit.finish(session, getattr(request.state, "principal", None))
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
