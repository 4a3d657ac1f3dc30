"""Units and the unit tree."""

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

UnitKind = Literal["national", "pole", "antenne", "detachement", "cross"]


class UnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    kind: UnitKind
    parent_id: uuid.UUID | None
    departement: str | None


class UnitNode(UnitOut):
    children: list["UnitNode"] = []


class UnitCreate(BaseModel):
    code: str = Field(min_length=2, max_length=40, pattern=r"^[A-Z0-9][A-Z0-9-]*$")
    name: str = Field(min_length=2, max_length=200)
    kind: UnitKind
    parent_id: uuid.UUID | None = None
    departement: str | None = Field(default=None, pattern=r"^(\d{2}|2A|2B|\d{3})$")


class UnitUpdate(BaseModel):
    name: str = Field(min_length=2, max_length=200)
