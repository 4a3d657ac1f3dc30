"""Escalations: a case handed up to a unit above for review."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk
from app.models.cases import PRIORITIES

ESCALATION_STATUSES = ("pending", "accepted", "returned", "declined")
DECISIONS = {"accept": "accepted", "return": "returned", "decline": "declined"}


class Escalation(Base):
    __tablename__ = "escalations"
    __table_args__ = (
        CheckConstraint(in_list("priority", PRIORITIES), name="priority"),
        CheckConstraint(in_list("status", ESCALATION_STATUSES), name="status"),
        # One pending escalation per case, enforced by the database.
        Index(
            "uq_escalations_pending_case",
            "case_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_escalations_queue", "to_unit_id", "status", "priority_rank", "created_at", "id"),
        # The queue of many target units at once (OFAST's view of every unit below) is
        # read in order from this index instead of sorting every pending escalation.
        Index(
            "ix_escalations_pending_order",
            "priority_rank",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    from_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    to_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    requested_by: Mapped[str] = mapped_column(String(80))
    justification: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10))
    # 0 urgent, 1 high, 2 routine: the queue sorts on it.
    priority_rank: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
