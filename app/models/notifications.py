"""In-app notifications: what happened to a case, an escalation or a task, for one person."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, desc
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, now_column, uuid_pk


class Notification(Base):
    """One message to one user. `kind` names the event (escalation_requested,
    escalation_decided, case_assigned, task_assigned, task_changed, …). `case_id` and
    `escalation_id` point at what it is about; they are plain uuids, not foreign keys,
    so that notifications do not depend on the cases tables."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_created", "user_id", desc("created_at")),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[uuid.UUID | None] = mapped_column()
    escalation_id: Mapped[uuid.UUID | None] = mapped_column()
    hit_id: Mapped[uuid.UUID | None] = mapped_column()
    operation_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = now_column()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
