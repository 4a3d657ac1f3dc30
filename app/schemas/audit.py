"""The audit trail as auditors and supervisors read it."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_kind: str
    actor_id: uuid.UUID | None
    actor_name: str | None
    agency: str | None
    unit_id: uuid.UUID | None
    action: str
    object_type: str | None
    object_id: str | None
    outcome: str
    status: int | None
    purpose: str | None
    request_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None = None


class AccessLogEntry(BaseModel):
    """Who consulted or changed a record, when, and why."""

    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor_kind: str
    actor_name: str | None
    agency: str | None
    unit_id: uuid.UUID | None
    action: str
    outcome: str
    purpose: str | None


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_cursor: str | None = None


class Anomaly(BaseModel):
    """One finding: `kind` is volume (reads and searches far above the unit's median),
    off_hours (activity outside 06:00–22:00 local time), denial_burst (denials within 10
    minutes) or selector_without_case (selector or person searches not tied to a case)."""

    kind: str
    actor_id: uuid.UUID | None
    actor_name: str | None
    unit_id: uuid.UUID | None
    count: int
    detail: str


class AnomalyReport(BaseModel):
    since: datetime
    until: datetime
    anomalies: list[Anomaly]
