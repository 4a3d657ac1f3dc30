"""Review decisions on records: keep (for another period) or purge."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

DECISIONS = ("keep", "purge")


class RecordReview(Base):
    """One supervisor's decision on a record due for review, with its justification."""

    __tablename__ = "record_reviews"
    __table_args__ = (
        CheckConstraint(in_list("decision", DECISIONS), name="decision"),
        Index("ix_record_reviews_record_id", "record_id", "decided_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id", ondelete="RESTRICT"))
    decision: Mapped[str] = mapped_column(String(10))
    justification: Mapped[str] = mapped_column(Text)
    decided_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = now_column()
