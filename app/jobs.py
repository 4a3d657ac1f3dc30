"""Background work that owns its transactions: the retention run, from the CLI
(`crossintel retention run`) or periodically in the server."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from app.db import Database
from app.services import audit, auth, reviews, web_sessions
from app.settings import Settings
from app.storage import FileStore

log = logging.getLogger("crossintel.jobs")

BATCH = 200
# An upload writes its file before its row commits: spare files younger than this.
SWEEP_AFTER = timedelta(hours=1)


@dataclass
class RetentionResult:
    due: int
    purged: int
    files_removed: int
    tokens_pruned: int = 0


async def run_retention(
    db: Database,
    settings: Settings,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RetentionResult:
    """Purge every due record, one committed batch at a time (safe to interrupt: what a
    batch did is whole, what it did not is left for the next run), then sweep files no
    attachment refers to. Expired tokens and web sessions are forgotten on the way."""
    store = FileStore(settings.data_dir)
    async with db.sessionmaker() as session:
        due = await reviews.count_due(session)
    if dry_run:
        return RetentionResult(due, 0, 0)
    async with db.sessionmaker() as session:
        pruned = await auth.prune_expired(session)
        pruned += await web_sessions.prune_expired(session, settings)
        await session.commit()
    if not due:
        return RetentionResult(due, 0, 0, pruned)
    purged = removed = 0
    while True:
        async with db.sessionmaker() as session:
            audit.begin(
                session,
                audit.Trail.for_settings(
                    settings, actor=audit.Actor("system", name="retention"), user_agent="job"
                ),
            )
            batch = await reviews.purge_batch(session, BATCH)
            await audit.finish(session, None)
            await session.commit()
        if not batch.purged:
            break
        reviews.remove_files(store, batch.files)
        purged += len(batch.purged)
        removed += len(batch.files)
        if progress:
            progress(purged, due)
    async with db.sessionmaker() as session:
        removed += await reviews.sweep_files(session, store, SWEEP_AFTER)
    return RetentionResult(due, purged, removed, pruned)


async def retention_loop(db: Database, settings: Settings) -> None:
    """Run retention every `retention_interval_seconds` until cancelled."""
    while True:
        await asyncio.sleep(settings.retention_interval_seconds)
        try:
            result = await run_retention(db, settings)
            if result.purged:
                log.info("retention run", extra={"purged": result.purged})
        except Exception:
            log.exception("retention run failed; next attempt at the next interval")
