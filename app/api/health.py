"""Liveness and readiness probes (public)."""

from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database
from app.errors import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> dict[str, str]:
    """The database answers and its schema is at the migrations' head; 503 otherwise."""
    db: Database = request.app.state.db
    try:
        current = await db.current_revision()
    except (SQLAlchemyError, OSError) as exc:
        raise Problem(503, "not_ready", "Not ready", "The database is unreachable.") from exc
    head = request.app.state.head_revision
    if current != head:
        raise Problem(
            503, "not_ready", "Not ready", f"The schema is at {current}, not at head {head}."
        )
    return {"status": "ready", "revision": head}
