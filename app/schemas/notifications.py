"""In-app notifications, as their recipient reads them."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    title: str
    body: str
    case_id: uuid.UUID | None
    escalation_id: uuid.UUID | None
    hit_id: uuid.UUID | None
    operation_id: uuid.UUID | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None


class ReadAllOut(BaseModel):
    marked_read: int
