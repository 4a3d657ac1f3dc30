"""Intelligence records: filing, editing, reading, searching."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.models.records import DRUG_TYPES, HANDLING_CODES, SCOPES, SOURCE_RELIABILITY
from app.schemas.entities import Entity

# The vocabularies are the models' own, so schema and CHECK constraints cannot drift.
DrugType = Literal[DRUG_TYPES]
Reliability = Literal[SOURCE_RELIABILITY]
HandlingCode = Literal[HANDLING_CODES]
Scope = Literal[SCOPES]
# The column holds varchar(80)[]: longer tags would be cut silently by PostgreSQL's cast.
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
CLASSIFIED = {"SECRET", "TRES_SECRET", "TRÈS_SECRET", "TS", "S", "CONFIDENTIEL_DEFENSE"}


def normal_marking(value: str) -> str:
    """NP or DR, upper case; classified levels refused (the service is not accredited)."""
    upper = value.strip().upper()
    if upper in CLASSIFIED:
        raise ValueError(
            f"{value} is a classified level: crossintel is not accredited for classified "
            "information; use NP or DR, or the accredited channel"
        )
    if upper not in ("NP", "DR"):
        raise ValueError("must be NP (non protégé) or DR (Diffusion Restreinte)")
    return upper


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commune: str | None = Field(default=None, max_length=200)
    departement: str | None = Field(default=None, pattern=r"^(\d{2}|2A|2B|\d{3})$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class RecordCreate(BaseModel):
    """A record as filed. Author and author agency come from the caller, never the body."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=3, max_length=300)
    narrative: str = Field(min_length=1, max_length=100_000)
    occurred_at: AwareDatetime
    location: Location = Location()
    drug_types: list[DrugType] = []
    source_reliability: Reliability
    information_assessment: int = Field(ge=1, le=4)
    handling_code: HandlingCode = "H0"
    handling_note: str | None = Field(default=None, max_length=2000, validate_default=True)
    marking: str = "NP"
    scope: Scope = "unit"
    unit_id: uuid.UUID | None = None
    tags: list[Tag] = Field(default=[], max_length=50)
    entities: list[Entity] = Field(default=[], max_length=200)

    _marking = field_validator("marking")(normal_marking)

    @field_validator("handling_note")
    @classmethod
    def _h3_needs_note(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("handling_code") == "H3" and not (value or "").strip():
            raise ValueError("required with handling code H3")
        return value


class RecordUpdate(BaseModel):
    """Fields to change; `entities`, when given, replaces the whole list."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=3, max_length=300)
    narrative: str | None = Field(default=None, min_length=1, max_length=100_000)
    occurred_at: AwareDatetime | None = None
    location: Location | None = None
    drug_types: list[DrugType] | None = None
    source_reliability: Reliability | None = None
    information_assessment: int | None = Field(default=None, ge=1, le=4)
    handling_code: HandlingCode | None = None
    handling_note: str | None = Field(default=None, max_length=2000)
    marking: str | None = None
    scope: Scope | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    entities: list[Entity] | None = Field(default=None, max_length=200)

    @field_validator("marking")
    @classmethod
    def _marking(cls, value: str | None) -> str | None:
        return None if value is None else normal_marking(value)


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: datetime


class RecordSummary(BaseModel):
    id: uuid.UUID
    title: str
    unit_id: uuid.UUID
    unit_code: str
    author_agency: str
    occurred_at: datetime
    commune: str | None
    drug_types: list[str]
    source_reliability: str
    information_assessment: int
    handling_code: str
    marking: str
    scope: str
    created_at: datetime


class RecordOut(RecordSummary):
    narrative: str
    location: Location
    handling_note: str | None
    tags: list[str]
    entities: list[dict]
    author: str
    version: int
    updated_at: datetime
    review_at: datetime
    retain_until: datetime
    attachments: list[AttachmentOut]


class Facets(BaseModel):
    drug_type: dict[str, int]
    unit: dict[str, int]
    month: dict[str, int]


class RecordPage(BaseModel):
    items: list[RecordSummary]
    next_cursor: str | None
    facets: Facets | None = None


class RecordVersionOut(BaseModel):
    version: int
    changed_by: str
    changed_at: datetime
    snapshot: dict
