"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from app.models.base import Base
from app.models.clients import ServiceClient
from app.models.records import (
    Record,
    RecordAttachment,
    RecordGrant,
    RecordSelector,
    RecordVersion,
)
from app.models.units import Agency, Unit
from app.models.users import Membership, RefreshToken, RevokedAccessToken, User

__all__ = [
    "Agency",
    "Base",
    "Membership",
    "Record",
    "RecordAttachment",
    "RecordGrant",
    "RecordSelector",
    "RecordVersion",
    "RefreshToken",
    "RevokedAccessToken",
    "ServiceClient",
    "Unit",
    "User",
]
