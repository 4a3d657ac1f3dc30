"""Review of records: what is due, and a supervisor's decision."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.schemas.cases import Justification, Strict


class ReviewDue(BaseModel):
    """A record due for review: enough to find it, nothing of its content but the title."""

    record_id: uuid.UUID
    title: str
    unit_id: uuid.UUID
    unit_code: str
    review_at: datetime
    retain_until: datetime
    created_at: datetime
    updated_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewDue]
    next_cursor: str | None = None


class ReviewIn(Strict):
    decision: Literal["keep", "purge"]
    justification: Justification


class ReviewOut(BaseModel):
    record_id: uuid.UUID
    decision: str
    justification: str
    decided_by: str
    decided_at: datetime
    review_at: datetime
    purge_decided_at: datetime | None
