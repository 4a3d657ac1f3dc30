"""Deconfliction: blind hits between holders of the same selector, requests for access
to the other side's item, and the selectors that must not raise hits."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list, now_column, uuid_pk

HIT_KINDS = ("exact", "possible")
REQUEST_STATUSES = ("pending", "approved", "declined")


class Hit(Base):
    """Two holders of one selector (or, `possible`, of similar persons born the same day).

    A holder is one party's records — a unit and an agency, represented by its earliest
    record holding the selector — or one case. Sides are stored in `key` order so a pair
    of holders and a selector make one hit. Visible to the members of each side's unit
    who see that side's item (the policy's `hit_filter`); each side is shown only the
    other's unit, agency, contact, date and kind of item."""

    __tablename__ = "hits"
    __table_args__ = (
        CheckConstraint(in_list("kind", HIT_KINDS), name="kind"),
        CheckConstraint("a_key < b_key", name="ordered"),
        CheckConstraint("(a_record_id is null) <> (a_case_id is null)", name="a_item"),
        CheckConstraint("(b_record_id is null) <> (b_case_id is null)", name="b_item"),
        Index(
            "uq_hits_pair",
            "kind",
            "selector_type",
            "a_value",
            "b_value",
            "a_key",
            "b_key",
            unique=True,
        ),
        Index("ix_hits_a_unit", "a_unit_id", "created_at"),
        Index("ix_hits_b_unit", "b_unit_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str] = mapped_column(String(10))
    selector_type: Mapped[str] = mapped_column(String(30))
    a_key: Mapped[str] = mapped_column(String(120))
    a_value: Mapped[str] = mapped_column(Text)
    a_record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("records.id"))
    a_case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    a_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    a_agency: Mapped[str | None] = mapped_column(String(20))
    a_first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    b_key: Mapped[str] = mapped_column(String(120))
    b_value: Mapped[str] = mapped_column(Text)
    b_record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("records.id"))
    b_case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    b_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    b_agency: Mapped[str | None] = mapped_column(String(20))
    b_first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()


class CommonSelector(Base):
    """A selector held by more parties than the setting allows: it raises no more hits."""

    __tablename__ = "common_selectors"

    type: Mapped[str] = mapped_column(String(30), primary_key=True)
    value: Mapped[str] = mapped_column(Text, primary_key=True)
    holders: Mapped[int] = mapped_column(Integer)
    marked_at: Mapped[datetime] = now_column()


class SelectorExclusion(Base):
    """A selector admins keep from raising hits (switchboard, hotline, test number)."""

    __tablename__ = "selector_exclusions"
    __table_args__ = (Index("uq_selector_exclusions", "type", "value", unique=True),)

    id: Mapped[uuid.UUID] = uuid_pk()
    type: Mapped[str] = mapped_column(String(30))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    added_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = now_column()


class AccessRequest(Base):
    """A request, from one side of a hit, to see the other side's record or case. The
    holder's supervisors approve it (a grant until `expires_at`, which for an H2 record is
    the originating unit's consent) or decline it."""

    __tablename__ = "access_requests"
    __table_args__ = (
        CheckConstraint(in_list("status", REQUEST_STATUSES), name="status"),
        CheckConstraint("(record_id is null) <> (case_id is null)", name="one_item"),
        Index("ix_access_requests_target", "target_unit_id", "status", "created_at"),
        Index("ix_access_requests_requester", "requester_id", "created_at"),
        Index(
            "uq_access_requests_pending",
            "hit_id",
            "requester_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    hit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("hits.id"))
    requester_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    requester_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    record_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("records.id"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    target_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_note: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()
