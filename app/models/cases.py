"""Cases: investigations grouping records and entities under one custody unit, with their
team, tasks, notes, seizures, arrests and timeline."""

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY as PG_ARRAY
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk
from app.models.records import DRUG_TYPES

PRIORITIES = ("routine", "high", "urgent")
CASE_STATUSES = ("open", "escalated", "closed")
OUTCOMES = ("judicial_referral", "transferred", "no_further_action", "merged")
TEAM_ROLES = ("lead", "member", "observer")
TASK_STATUSES = ("todo", "doing", "done")
QUANTITY_UNITS = ("kg", "g", "tablets", "doses", "plants")
ASSET_CATEGORIES = (
    "cash",
    "bank_account",
    "vehicle",
    "real_estate",
    "crypto",
    "luxury_goods",
    "other",
)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(in_list("priority", PRIORITIES), name="priority"),
        CheckConstraint(in_list("status", CASE_STATUSES), name="status"),
        CheckConstraint(f"outcome is null or {in_list('outcome', OUTCOMES)}", name="outcome"),
        CheckConstraint("(status = 'closed') = (outcome is not null)", name="closed_outcome"),
        Index("ix_cases_created", "created_at", "id"),
        Index("ix_cases_custodians", "custodian_unit_ids", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    # Every unit that has held custody, the current one included: they keep access after
    # custody moves. An array on the row so that visibility is checked per case while the
    # list walks its index, without gathering every visible case first.
    custodian_unit_ids: Mapped[list[uuid.UUID]] = mapped_column(PG_ARRAY(Uuid))
    lead_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="open")
    judicial_reference: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(30))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class CaseCounter(Base):
    """The last case number given per unit and year (references are sequential)."""

    __tablename__ = "case_counters"

    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class CaseMember(Base):
    """A team member, from any unit; access ends at `expires_at` when set."""

    __tablename__ = "case_members"
    __table_args__ = (
        CheckConstraint(in_list("role", TEAM_ROLES), name="role"),
        # A user's cases with their expiry, read without visiting the table.
        Index("ix_case_members_user_case", "user_id", "case_id", postgresql_include=["expires_at"]),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(10))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(80))
    added_at: Mapped[datetime] = now_column()


class CaseRecord(Base):
    __tablename__ = "case_records"

    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_by: Mapped[str] = mapped_column(String(80))
    linked_at: Mapped[datetime] = now_column()


class CaseEntity(Base):
    """An entity linked to a case (same shapes as a record's), with its selectors."""

    __tablename__ = "case_entities"

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    selectors: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    added_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class CaseSelector(Base):
    """A selector of an entity linked to a case, for deconfliction (as record_selectors)."""

    __tablename__ = "case_selectors"
    __table_args__ = (
        Index("ix_case_selectors_type_value", "type", "value"),
        Index(
            "ix_case_selectors_birth_date",
            func.split_part(text("value"), "|", 3),
            postgresql_where=text("type = 'person'"),
        ),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(30), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    created_at: Mapped[datetime] = now_column()


class CaseTask(Base):
    __tablename__ = "case_tasks"
    __table_args__ = (CheckConstraint(in_list("status", TASK_STATUSES), name="status"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="todo")
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class CaseNote(Base):
    __tablename__ = "case_notes"

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class DrugSeizure(Base):
    __tablename__ = "drug_seizures"
    __table_args__ = (
        CheckConstraint(in_list("substance", DRUG_TYPES), name="substance"),
        CheckConstraint(in_list("quantity_unit", QUANTITY_UNITS), name="quantity_unit"),
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("purity_pct is null or purity_pct between 0 and 100", name="purity"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    substance: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    quantity_unit: Mapped[str] = mapped_column(String(10))
    purity_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    place: Mapped[str | None] = mapped_column(String(200))
    seized_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class AssetSeizure(Base):
    __tablename__ = "asset_seizures"
    __table_args__ = (
        CheckConstraint(in_list("category", ASSET_CATEGORIES), name="category"),
        CheckConstraint("estimated_value_eur >= 0", name="value"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(20))
    estimated_value_eur: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    agrasc_reference: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    seized_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class Arrest(Base):
    __tablename__ = "arrests"
    __table_args__ = (CheckConstraint("count > 0", name="count"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    count: Mapped[int] = mapped_column(Integer)
    person_entity_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    arrested_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class CaseEvent(Base):
    """One line of a case's timeline: who did what, when, with before/after for changes."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_seq", "case_id", "seq"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    # Insertion order: events of one transaction share their `created_at`.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = now_column()
