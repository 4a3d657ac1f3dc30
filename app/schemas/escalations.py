"""Escalations: requesting review by a unit above, the review queue, decisions."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.models.escalations import DECISIONS, ESCALATION_STATUSES
from app.schemas.cases import Priority, Strict, Text

EscalationStatus = Literal[ESCALATION_STATUSES]


class EscalationCreate(Strict):
    to_unit_id: uuid.UUID | None = None
    justification: Text
    priority: Priority = "routine"


class Decision(Strict):
    decision: Literal[tuple(DECISIONS)]
    note: Text


class EscalationOut(BaseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    case_reference: str
    case_title: str
    from_unit_id: uuid.UUID
    from_unit_code: str
    to_unit_id: uuid.UUID
    to_unit_code: str
    requested_by: str
    justification: str
    priority: Priority
    status: EscalationStatus
    created_at: datetime
    due_at: datetime
    overdue: bool
    decided_by: str | None
    decision_note: str | None
    decided_at: datetime | None


class EscalationPage(BaseModel):
    items: list[EscalationOut]
    next_cursor: str | None
