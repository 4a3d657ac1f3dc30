"""Planned operations and the conflicts between them."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator

from app.models.operations import OPERATION_KINDS
from app.schemas.cases import Strict

OperationKind = Literal[OPERATION_KINDS]  # type: ignore[valid-type]


class _Window(Strict):
    @field_validator("ends_at", check_fields=False)
    @classmethod
    def _after_start(cls, ends: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("starts_at")
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("must be after starts_at")
        return ends


class OperationCreate(_Window):
    kind: OperationKind
    unit_id: uuid.UUID | None = Field(
        default=None, description="required only for members of several units"
    )
    case_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: int = Field(ge=1, le=50_000, description="metres around the position")
    address: str | None = Field(default=None, max_length=300)


class OperationUpdate(_Window):
    kind: OperationKind | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    radius_m: int | None = Field(default=None, ge=1, le=50_000)
    address: str | None = Field(default=None, max_length=300)


class Conflict(BaseModel):
    """Another unit's operation that overlaps in time and place — no case content."""

    operation_id: uuid.UUID
    unit_id: uuid.UUID
    unit_code: str
    contact: list[str]
    kind: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    distance_m: int


class OperationOut(BaseModel):
    id: uuid.UUID
    unit_id: uuid.UUID
    unit_code: str
    kind: str
    case_id: uuid.UUID | None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    lat: float
    lon: float
    radius_m: int
    address: str | None
    status: Literal["planned", "cancelled"]
    created_by: str
    version: int
    conflicts: list[Conflict]


class OperationPage(BaseModel):
    items: list[OperationOut]
    next_cursor: str | None = None
