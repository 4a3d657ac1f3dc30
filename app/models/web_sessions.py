"""Signed-in browser sessions of the web client (app/web/)."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, now_column, uuid_pk


class WebSession(Base):
    """One browser's sign-in. The cookie holds a random token; only its SHA-256 is kept.

    A session ends on sign-out (row deleted, its id revoked like an access token so an open
    event stream stops), after `web_idle_minutes` without a page request, or at
    `expires_at` (`web_session_hours` after sign-in), whichever comes first."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()
    last_seen_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
