"""Users and memberships, as admins manage them."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Agency = Literal["police", "gendarmerie", "douane", "justice", "ofast"]
UnitRole = Literal["officer", "supervisor", "analyst"]
PlatformRole = Literal["admin", "auditor"]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    agency: Agency
    email: str | None
    platform_roles: list[str]
    is_active: bool
    locked_until: datetime | None
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=2, max_length=80, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    display_name: str = Field(min_length=1, max_length=200)
    agency: Agency
    password: str = Field(min_length=12, max_length=256)
    email: EmailStr | None = None
    platform_roles: list[PlatformRole] = []


class UserUpdate(BaseModel):
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=256)


class MembershipCreate(BaseModel):
    unit_id: uuid.UUID
    role: UnitRole


class MembershipOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    unit_id: uuid.UUID
    unit_code: str
    role: UnitRole
