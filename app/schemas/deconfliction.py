"""Deconfliction hits as each side sees them, access requests, exclusions."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.schemas.cases import Justification, Strict
from app.services.entities import SELECTOR_TYPES

SelectorType = Literal[SELECTOR_TYPES]  # type: ignore[valid-type]


class HitSide(BaseModel):
    """The caller's own side: its item (which it can already see)."""

    item: Literal["record", "case"]
    record_id: uuid.UUID | None
    case_id: uuid.UUID | None
    first_at: datetime


class OtherSide(BaseModel):
    """The other side: who holds it and whom to call — never its content."""

    item: Literal["record", "case"]
    unit_id: uuid.UUID
    unit_code: str
    agency: str | None
    contact: list[str]
    first_at: datetime


class HitOut(BaseModel):
    id: uuid.UUID
    kind: Literal["exact", "possible"]
    selector_type: str
    masked_value: str
    mine: HitSide
    other: OtherSide
    created_at: datetime


class HitPage(BaseModel):
    items: list[HitOut]
    next_cursor: str | None = None


class AccessRequestIn(Strict):
    justification: Justification


class AccessDecisionIn(Strict):
    decision: Literal["approve", "decline"]
    expires_at: AwareDatetime | None = Field(
        default=None, description="required to approve: when the access ends"
    )
    note: str = Field(default="", max_length=2000)


class AccessRequestOut(BaseModel):
    id: uuid.UUID
    hit_id: uuid.UUID
    requester_id: uuid.UUID
    requester_unit_code: str
    item: Literal["record", "case"]
    record_id: uuid.UUID | None
    case_id: uuid.UUID | None
    target_unit_id: uuid.UUID
    justification: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    expires_at: datetime | None
    created_at: datetime


class ExclusionIn(Strict):
    type: SelectorType
    value: str = Field(min_length=1, max_length=300, description="any spelling: normalised")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=500)]


class ExclusionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str
    value: str
    reason: str
    added_by: str
    created_at: datetime
