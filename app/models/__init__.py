"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from app.models.audit import AuditChain, AuditEvent
from app.models.base import Base
from app.models.cases import (
    Arrest,
    AssetSeizure,
    Case,
    CaseCounter,
    CaseEntity,
    CaseEvent,
    CaseMember,
    CaseNote,
    CaseRecord,
    CaseSelector,
    CaseTask,
    DrugSeizure,
)
from app.models.clients import ServiceClient
from app.models.deconfliction import AccessRequest, CommonSelector, Hit, SelectorExclusion
from app.models.escalations import Escalation
from app.models.notifications import Notification
from app.models.operations import Operation, OperationConflict
from app.models.records import (
    Record,
    RecordAttachment,
    RecordGrant,
    RecordSelector,
    RecordVersion,
)
from app.models.reviews import RecordReview
from app.models.units import Agency, Unit
from app.models.users import Membership, RefreshToken, RevokedAccessToken, User
from app.models.web_sessions import WebSession

__all__ = [
    "AccessRequest",
    "CaseSelector",
    "CommonSelector",
    "Hit",
    "Operation",
    "OperationConflict",
    "SelectorExclusion",
    "Agency",
    "Arrest",
    "AuditChain",
    "AuditEvent",
    "AssetSeizure",
    "Base",
    "Case",
    "CaseCounter",
    "CaseEntity",
    "CaseEvent",
    "CaseMember",
    "CaseNote",
    "CaseRecord",
    "CaseTask",
    "DrugSeizure",
    "Escalation",
    "Membership",
    "Notification",
    "Record",
    "RecordAttachment",
    "RecordGrant",
    "RecordReview",
    "RecordSelector",
    "RecordVersion",
    "RefreshToken",
    "RevokedAccessToken",
    "ServiceClient",
    "Unit",
    "User",
    "WebSession",
]
