"""Review of records by the supervisors of their origin unit."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.principal import PrincipalDep
from app.db import SessionDep
from app.schemas.reviews import ReviewPage
from app.services import reviews as reviews_service

router = APIRouter(prefix="/reviews", tags=["reviews"])


@router.get("", response_model=ReviewPage, name="review.list")
async def due_reviews(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
) -> ReviewPage:
    """Records due for review in the units the caller supervises, longest overdue first.
    Decide each with `POST /records/{id}/review`."""
    items, next_cursor = await reviews_service.due_reviews(
        session, principal, limit=limit, cursor=cursor
    )
    return ReviewPage(items=items, next_cursor=next_cursor)
