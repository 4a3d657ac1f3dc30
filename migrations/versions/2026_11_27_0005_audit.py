"""audit: the append-only, hash-chained trail; record review and retention

The trail is append-only for every role, the table's owner included: a trigger refuses
UPDATE, DELETE and TRUNCATE. Records filed before this revision are due for review three
years after their last change and kept five years after filing (the default settings).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 15:51:57.279716
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Concurrent writers each take a free chain; more chains than the database serves
# connections at once would only lengthen `audit verify`.
CHAINS = 16
APPEND_ONLY = (
    """
create function audit_events_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_events is append-only: % refused', tg_op
        using errcode = 'insufficient_privilege';
end
$$""",
    """create trigger audit_events_no_change before update or delete on audit_events
    for each row execute function audit_events_append_only()""",
    """create trigger audit_events_no_truncate before truncate on audit_events
    for each statement execute function audit_events_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("chain", sa.SmallInteger(), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=10), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_name", sa.String(length=120), nullable=True),
        sa.Column("agency", sa.String(length=20), nullable=True),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("object_type", sa.String(length=30), nullable=True),
        sa.Column("object_id", sa.String(length=80), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "actor_kind in ('user', 'client', 'system', 'anonymous')",
            name=op.f("ck_audit_events_actor_kind"),
        ),
        sa.CheckConstraint(
            "outcome in ('success', 'denied', 'failure')", name=op.f("ck_audit_events_outcome")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("chain", "chain_seq", name=op.f("uq_audit_events_chain")),
    )
    op.execute(
        "insert into audit_chains (chain, seq, hash) "
        f"select n, 0, '\\x{'00' * 32}'::bytea from generate_series(0, {CHAINS - 1}) as n"
    )
    for statement in APPEND_ONLY:
        op.execute(statement)
    op.execute("revoke update, delete, truncate on audit_events from public")
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id", "id"], unique=False)
    op.create_index(
        "ix_audit_events_at", "audit_events", ["at"], unique=False, postgresql_using="brin"
    )
    op.create_index(
        "ix_audit_events_object", "audit_events", ["object_type", "object_id", "id"], unique=False
    )
    op.create_table(
        "record_reviews",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("decided_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=False),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "decision in ('keep', 'purge')", name=op.f("ck_record_reviews_decision")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["users.id"],
            name=op.f("fk_record_reviews_decided_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_reviews_record_id_records"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_reviews")),
    )
    op.create_index(
        "ix_record_reviews_record_id", "record_reviews", ["record_id", "decided_at"], unique=False
    )
    op.create_index(
        "ix_record_selectors_surname",
        "record_selectors",
        [sa.literal_column("split_part(value, '|', 1)")],
        unique=False,
        postgresql_where=sa.text("type = 'person_name'"),
    )
    op.add_column("records", sa.Column("review_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("records", sa.Column("retain_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "update records set review_at = updated_at + interval '1095 days', "
        "retain_until = created_at + interval '1825 days'"
    )
    op.alter_column("records", "review_at", nullable=False)
    op.alter_column("records", "retain_until", nullable=False)
    op.add_column(
        "records", sa.Column("purge_decided_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("records", sa.Column("purge_decided_by", sa.String(length=80), nullable=True))
    op.add_column("records", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_records_purge_decided_at",
        "records",
        ["purge_decided_at"],
        unique=False,
        postgresql_where=sa.text("purged_at is null and purge_decided_at is not null"),
    )
    op.create_index(
        "ix_records_retain_until",
        "records",
        ["retain_until"],
        unique=False,
        postgresql_where=sa.text("purged_at is null"),
    )
    op.create_index(
        "ix_records_unit_review_at",
        "records",
        ["unit_id", "review_at"],
        unique=False,
        postgresql_where=sa.text("purged_at is null"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_records_unit_review_at",
        table_name="records",
        postgresql_where=sa.text("purged_at is null"),
    )
    op.drop_index(
        "ix_records_retain_until",
        table_name="records",
        postgresql_where=sa.text("purged_at is null"),
    )
    op.drop_index(
        "ix_records_purge_decided_at",
        table_name="records",
        postgresql_where=sa.text("purged_at is null and purge_decided_at is not null"),
    )
    op.drop_column("records", "purged_at")
    op.drop_column("records", "purge_decided_by")
    op.drop_column("records", "purge_decided_at")
    op.drop_column("records", "retain_until")
    op.drop_column("records", "review_at")
    op.drop_index(
        "ix_record_selectors_surname",
        table_name="record_selectors",
        postgresql_where=sa.text("type = 'person_name'"),
    )
    op.drop_index("ix_record_reviews_record_id", table_name="record_reviews")
    op.drop_table("record_reviews")
    op.drop_index("ix_audit_events_object", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events", postgresql_using="brin")
    op.drop_index("ix_audit_events_actor_id", table_name="audit_events")
    op.drop_table("audit_events")
    op.execute("drop function audit_events_append_only()")
    op.drop_table("audit_chains")
