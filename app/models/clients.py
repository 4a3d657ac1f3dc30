"""Service clients: agency systems using OAuth2 client credentials."""

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

MARKINGS = ("NP", "DR")


class ServiceClient(Base):
    __tablename__ = "service_clients"
    __table_args__ = (CheckConstraint(in_list("max_marking", MARKINGS), name="max_marking"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    client_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    max_marking: Mapped[str] = mapped_column(String(2), default="NP")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = now_column()
