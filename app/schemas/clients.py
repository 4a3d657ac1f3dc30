"""Service clients, as admins manage them."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.users import Agency

Scope = Literal["records:read", "records:write"]


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    client_id: str
    name: str
    unit_id: uuid.UUID
    agency: Agency
    scopes: list[str]
    max_marking: Literal["NP", "DR"]
    is_active: bool
    created_at: datetime


class ClientCreate(BaseModel):
    client_id: str = Field(min_length=2, max_length=80, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    unit_id: uuid.UUID
    agency: Agency
    scopes: list[Scope] = Field(min_length=1)
    max_marking: Literal["NP", "DR"] = "NP"


class ClientSecret(BaseModel):
    """A client with its secret: the only time the secret is ever shown."""

    client: ClientOut
    client_secret: str
