"""The audit trail: one row per action or denial, append-only and hash-chained.

Rows are spread over a fixed number of chains (`audit_chains`): a transaction takes the
head of a free chain (`FOR UPDATE SKIP LOCKED`), so concurrent requests never queue on
one lock, and each chain stays strictly ordered by `chain_seq`. Each row's `hash` is an
HMAC of the previous row's hash and of the row's own fields (app/services/audit.py).
A trigger refuses UPDATE, DELETE and TRUNCATE on `audit_events` (migration 0005), for
every role.
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, in_list

ACTOR_KINDS = ("user", "client", "system", "anonymous")
OUTCOMES = ("success", "denied", "failure")


class AuditChain(Base):
    """The head of one chain: the last row's sequence number and hash."""

    __tablename__ = "audit_chains"

    chain: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditEvent(Base):
    """Who did what to which object, when, from where, why, and how it ended."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "chain_seq"),
        CheckConstraint(in_list("actor_kind", ACTOR_KINDS), name="actor_kind"),
        CheckConstraint(in_list("outcome", OUTCOMES), name="outcome"),
        # Rows arrive in time order: a BRIN index serves time windows at almost no cost
        # to each insert.
        Index("ix_audit_events_at", "at", postgresql_using="brin"),
        Index("ix_audit_events_actor_id", "actor_id", "id"),
        Index("ix_audit_events_object", "object_type", "object_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    chain: Mapped[int] = mapped_column(SmallInteger)
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[uuid.UUID | None]
    actor_name: Mapped[str | None] = mapped_column(String(120))
    agency: Mapped[str | None] = mapped_column(String(20))
    unit_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str | None] = mapped_column(String(30))
    object_id: Mapped[str | None] = mapped_column(String(80))
    outcome: Mapped[str] = mapped_column(String(10))
    status: Mapped[int | None] = mapped_column(SmallInteger)
    purpose: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
