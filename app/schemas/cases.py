"""Cases: creation, change, detail, team, links, tasks, notes, seizures, arrests, timeline."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.models.cases import (
    ASSET_CATEGORIES,
    CASE_STATUSES,
    OUTCOMES,
    PRIORITIES,
    QUANTITY_UNITS,
    TASK_STATUSES,
    TEAM_ROLES,
)
from app.schemas.entities import Entity
from app.schemas.records import DrugType, RecordSummary

Priority = Literal[PRIORITIES]
CaseStatus = Literal[CASE_STATUSES]
Outcome = Literal[OUTCOMES]
TeamRole = Literal[TEAM_ROLES]
TaskStatus = Literal[TASK_STATUSES]
QuantityUnit = Literal[QUANTITY_UNITS]
AssetCategory = Literal[ASSET_CATEGORIES]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
# A justification kept with a decision or a request: at least 10 characters once trimmed.
Justification = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseCreate(Strict):
    title: Title
    summary: str = Field(default="", max_length=20_000)
    priority: Priority = "routine"
    unit_id: uuid.UUID | None = None
    lead_user_id: uuid.UUID | None = None
    judicial_reference: str | None = Field(default=None, max_length=120)


class CaseUpdate(Strict):
    title: Title | None = None
    summary: str | None = Field(default=None, max_length=20_000)
    priority: Priority | None = None
    lead_user_id: uuid.UUID | None = None
    judicial_reference: str | None = Field(default=None, max_length=120)


class CaseClose(Strict):
    outcome: Outcome
    note: Text


class CaseSummary(BaseModel):
    id: uuid.UUID
    reference: str
    title: str
    priority: Priority
    status: CaseStatus
    unit_id: uuid.UUID
    unit_code: str
    lead: str
    created_at: datetime
    updated_at: datetime


class TeamMemberIn(Strict):
    role: TeamRole = "member"
    expires_at: AwareDatetime | None = None


class TeamMemberOut(BaseModel):
    user_id: uuid.UUID
    username: str
    role: TeamRole
    expires_at: datetime | None
    active: bool


class LinkRecord(Strict):
    record_id: uuid.UUID


class LinkedRecord(BaseModel):
    """A linked record: its summary, or a placeholder when its handling withholds it."""

    record_id: uuid.UUID
    withheld: bool
    unit_code: str
    message: str | None = None
    record: RecordSummary | None = None
    purged_at: datetime | None = None


class EntityIn(Strict):
    entity: Entity


class EntityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    data: dict
    added_by: str
    created_at: datetime


class TaskIn(Strict):
    title: Title
    assignee_id: uuid.UUID | None = None
    due_on: date | None = None


class TaskUpdate(Strict):
    title: Title | None = None
    assignee_id: uuid.UUID | None = None
    due_on: date | None = None
    status: TaskStatus | None = None


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    assignee_id: uuid.UUID | None
    due_on: date | None
    status: TaskStatus
    created_by: str
    created_at: datetime
    updated_at: datetime


class NoteIn(Strict):
    body: Text


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    body: str
    author: str
    created_at: datetime


class DrugSeizureIn(Strict):
    substance: DrugType
    quantity: Decimal = Field(gt=0, max_digits=14, decimal_places=3)
    quantity_unit: QuantityUnit
    purity_pct: Decimal | None = Field(default=None, ge=0, le=100, decimal_places=2)
    place: str | None = Field(default=None, max_length=200)
    seized_on: date


class DrugSeizureOut(DrugSeizureIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: uuid.UUID
    created_by: str


class AssetSeizureIn(Strict):
    category: AssetCategory
    estimated_value_eur: Decimal = Field(ge=0, max_digits=14, decimal_places=2)
    agrasc_reference: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=2000)
    seized_on: date


class AssetSeizureOut(AssetSeizureIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: uuid.UUID
    created_by: str


class ArrestIn(Strict):
    count: int = Field(gt=0, le=10_000)
    person_entity_ids: list[uuid.UUID] = []
    arrested_on: date


class ArrestOut(ArrestIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: uuid.UUID
    created_by: str


class CaseOut(CaseSummary):
    summary: str
    judicial_reference: str | None
    outcome: Outcome | None
    outcome_note: str | None
    version: int
    created_by: str
    team: list[TeamMemberOut]
    records: list[LinkedRecord]
    entities: list[EntityOut]
    tasks: list[TaskOut]
    notes: list[NoteOut]
    drug_seizures: list[DrugSeizureOut]
    asset_seizures: list[AssetSeizureOut]
    arrests: list[ArrestOut]


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None


class TimelineEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    actor: str
    action: str
    details: dict
    created_at: datetime


class Delegation(Strict):
    to_unit_id: uuid.UUID
    note: Text
