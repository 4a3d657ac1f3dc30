"""Intelligence records, their versions, selectors, attachments and access grants."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

DRUG_TYPES = (
    "herbal_cannabis",
    "cannabis_resin",
    "cannabis_plants",
    "cocaine",
    "crack",
    "heroin",
    "amphetamine",
    "methamphetamine",
    "mdma",
    "synthetic_cathinones_nps",
    "other",
)
SOURCE_RELIABILITY = ("A", "B", "C", "X")
HANDLING_CODES = ("H0", "H1", "H2", "H3")
MARKINGS = ("NP", "DR")
SCOPES = ("agency", "unit", "chain", "network")
GRANT_REASONS = ("case_custody", "case_team", "escalation", "access_request")


class Record(Base):
    """One piece of intelligence as filed. `seq` orders records for stable cursors."""

    __tablename__ = "records"
    __table_args__ = (
        CheckConstraint(in_list("source_reliability", SOURCE_RELIABILITY), name="reliability"),
        CheckConstraint("information_assessment between 1 and 4", name="assessment"),
        CheckConstraint(in_list("handling_code", HANDLING_CODES), name="handling_code"),
        CheckConstraint("handling_code <> 'H3' or handling_note is not null", name="h3_note"),
        CheckConstraint(in_list("marking", MARKINGS), name="marking"),
        CheckConstraint(in_list("scope", SCOPES), name="scope"),
        CheckConstraint(
            "(author_user_id is null) <> (author_client_id is null)", name="one_author"
        ),
        Index("ix_records_unit_seq", "unit_id", "seq"),
        Index("ix_records_search", "search", postgresql_using="gin"),
        Index("ix_records_drug_types", "drug_types", postgresql_using="gin"),
        Index("ix_records_occurred_at", "occurred_at"),
        Index(
            "ix_records_unit_review_at",
            "unit_id",
            "review_at",
            postgresql_where=text("purged_at is null"),
        ),
        Index(
            "ix_records_retain_until", "retain_until", postgresql_where=text("purged_at is null")
        ),
        Index(
            "ix_records_purge_decided_at",
            "purge_decided_at",
            postgresql_where=text("purged_at is null and purge_decided_at is not null"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"))
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    author_client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("service_clients.id"))
    author_agency: Mapped[str] = mapped_column(ForeignKey("agencies.code"))
    title: Mapped[str] = mapped_column(String(300))
    narrative: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commune: Mapped[str | None] = mapped_column(String(200))
    departement: Mapped[str | None] = mapped_column(String(3))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    drug_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)), default=list)
    source_reliability: Mapped[str] = mapped_column(String(1))
    information_assessment: Mapped[int] = mapped_column(SmallInteger)
    handling_code: Mapped[str] = mapped_column(String(2))
    handling_note: Mapped[str | None] = mapped_column(Text)
    marking: Mapped[str] = mapped_column(String(2))
    scope: Mapped[str] = mapped_column(String(10))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(80)), default=list)
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Written, never read back: deferred so that reads do not carry it.
    search: Mapped[Any] = mapped_column(TSVECTOR, deferred=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()
    # Review and retention (services/reviews.py): due for review by the origin unit's
    # supervisors at `review_at`, purged at `retain_until` or after a `purge` decision.
    # A purged record keeps only its tombstone: id, unit, dates and who decided.
    review_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    purge_decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    purge_decided_by: Mapped[str | None] = mapped_column(String(80))
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecordVersion(Base):
    """A snapshot of a record as it stood after each change (version 1 is the filing)."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("record_id", "version"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[datetime] = now_column()


class RecordSelector(Base):
    """A normalised identifier a record mentions (phone, IBAN, plate, person…)."""

    __tablename__ = "record_selectors"
    __table_args__ = (
        Index("ix_record_selectors_type_value", "type", "value"),
        # Person searches by surname alone (`SURNAME|GIVEN NAMES` values).
        Index(
            "ix_record_selectors_surname",
            func.split_part(text("value"), "|", 1),
            postgresql_where=text("type = 'person_name'"),
        ),
        # Possible person hits: persons born the same day (`SURNAME|GIVEN|YYYY-MM-DD`).
        Index(
            "ix_record_selectors_birth_date",
            func.split_part(text("value"), "|", 3),
            postgresql_where=text("type = 'person'"),
        ),
    )

    record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), primary_key=True
    )
    type: Mapped[str] = mapped_column(String(30), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)


class RecordAttachment(Base):
    """A file attached to a record, stored content-addressed by its SHA-256."""

    __tablename__ = "record_attachments"

    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(120))
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class RecordGrant(Base):
    """Access to one record beyond its scope, for a unit or a user, filled by cases,
    escalations and approved access requests. `consented` marks the originating unit's
    explicit consent, without which H2 records never ride a grant."""

    __tablename__ = "record_grants"
    __table_args__ = (
        CheckConstraint(in_list("reason", GRANT_REASONS), name="reason"),
        CheckConstraint("(unit_id is null) <> (user_id is null)", name="one_grantee"),
        Index("ix_record_grants_record", "record_id"),
        Index("ix_record_grants_unit", "unit_id"),
        Index("ix_record_grants_user", "user_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[uuid.UUID | None] = mapped_column()
    consented: Mapped[bool] = mapped_column(default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()
