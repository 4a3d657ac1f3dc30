"""Planned operations, for event deconfliction: two units' operations conflict when their
time windows overlap and their circles intersect."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

OPERATION_KINDS = ("search", "surveillance", "controlled_delivery", "arrest", "undercover")
OPERATION_STATUSES = ("planned", "cancelled")


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint(in_list("kind", OPERATION_KINDS), name="kind"),
        CheckConstraint(in_list("status", OPERATION_STATUSES), name="status"),
        CheckConstraint("ends_at > starts_at", name="window"),
        CheckConstraint("lat between -90 and 90 and lon between -180 and 180", name="position"),
        CheckConstraint("radius_m between 1 and 50000", name="radius"),
        # Windows are half-open, `[starts_at, ends_at)`: touching windows do not overlap.
        Index(
            "ix_operations_window",
            text("tstzrange(starts_at, ends_at)"),
            postgresql_using="gist",
            postgresql_where=text("status = 'planned'"),
        ),
        Index("ix_operations_unit", "unit_id", "starts_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(30))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[int] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(10), default="planned")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class OperationConflict(Base):
    """A conflict both sides were alerted to, `a_id < b_id`; gone when it no longer holds."""

    __tablename__ = "operation_conflicts"
    __table_args__ = (CheckConstraint("a_id < b_id", name="ordered"),)

    a_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    b_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    distance_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = now_column()
