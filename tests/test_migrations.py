"""Migrations are the schema: they go up, down and up again on an empty database, and the
models describe exactly what they build."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import Database, head_revision, migrate_async
from app.models import Base


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("select tablename from pg_tables where schemaname = 'public'")
            )
            return {r[0] for r in rows}
    finally:
        await engine.dispose()


async def _revision(url: str) -> str | None:
    db = Database(url, pool_size=1)
    try:
        return await db.current_revision()
    finally:
        await db.dispose()


async def test_upgrade_downgrade_upgrade(scratch_url: str):
    model_tables = set(Base.metadata.tables)
    assert await _revision(scratch_url) is None

    await migrate_async(scratch_url)
    assert await _revision(scratch_url) == head_revision()
    assert model_tables <= await _tables(scratch_url)

    await migrate_async(scratch_url, "base", down=True)
    assert await _tables(scratch_url) <= {"alembic_version"}
    assert await _revision(scratch_url) is None

    await migrate_async(scratch_url)
    assert await _revision(scratch_url) == head_revision()
    assert model_tables <= await _tables(scratch_url)
    engine = create_async_engine(scratch_url)
    try:
        async with engine.connect() as conn:
            agencies = set((await conn.scalars(text("select code from agencies"))).all())
    finally:
        await engine.dispose()
    assert agencies == {"police", "gendarmerie", "douane", "justice", "ofast"}


def _diff(sync_conn) -> list:
    context = MigrationContext.configure(
        sync_conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": Base.metadata,
        },
    )
    return compare_metadata(context, Base.metadata)


async def test_models_match_migrations(scratch_url: str):
    await migrate_async(scratch_url)
    engine = create_async_engine(scratch_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


async def test_models_match_migrations_detects_a_difference(scratch_url: str):
    """The comparison above is not vacuous: a column dropped by hand shows up."""
    await migrate_async(scratch_url)
    engine = create_async_engine(scratch_url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("alter table units drop column departement"))
            diff = await conn.run_sync(_diff)
            await conn.rollback()
    finally:
        await engine.dispose()
    assert any(d[0] == "add_column" and d[3].name == "departement" for d in diff), diff
