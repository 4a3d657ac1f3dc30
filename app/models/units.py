"""The unit tree (OFAST, poles, antennes, détachements, CROSS) and the agencies."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

UNIT_KINDS = ("national", "pole", "antenne", "detachement", "cross")
AGENCIES = ("police", "gendarmerie", "douane", "justice", "ofast")


class Agency(Base):
    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = (
        CheckConstraint(in_list("kind", UNIT_KINDS), name="kind"),
        CheckConstraint("(kind = 'cross') = (departement is not null)", name="cross_departement"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    departement: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = now_column()
