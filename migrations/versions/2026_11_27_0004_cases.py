"""cases: cases, team, links, tasks, notes, seizures, arrests, timeline, escalations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 15:26:28.025742
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_case_counters_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("unit_id", "year", name=op.f("pk_case_counters")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("custodian_unit_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("lead_user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("judicial_reference", sa.String(length=120), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'closed') = (outcome is not null)", name=op.f("ck_cases_closed_outcome")
        ),
        sa.CheckConstraint(
            "outcome is null or outcome in ('judicial_referral', 'transferred', 'no_further_action', 'merged')",
            name=op.f("ck_cases_outcome"),
        ),
        sa.CheckConstraint(
            "priority in ('routine', 'high', 'urgent')", name=op.f("ck_cases_priority")
        ),
        sa.CheckConstraint(
            "status in ('open', 'escalated', 'closed')", name=op.f("ck_cases_status")
        ),
        sa.ForeignKeyConstraint(
            ["lead_user_id"], ["users.id"], name=op.f("fk_cases_lead_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_cases_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_cases_reference")),
    )
    op.create_index("ix_cases_created", "cases", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_cases_custodians", "cases", ["custodian_unit_ids"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "arrests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("person_entity_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("arrested_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("count > 0", name=op.f("ck_arrests_count")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_arrests_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arrests")),
    )
    op.create_index(op.f("ix_arrests_case_id"), "arrests", ["case_id"], unique=False)
    op.create_table(
        "asset_seizures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("estimated_value_eur", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("agrasc_reference", sa.String(length=80), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("seized_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category in ('cash', 'bank_account', 'vehicle', 'real_estate', 'crypto', 'luxury_goods', 'other')",
            name=op.f("ck_asset_seizures_category"),
        ),
        sa.CheckConstraint("estimated_value_eur >= 0", name=op.f("ck_asset_seizures_value")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_asset_seizures_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asset_seizures")),
    )
    op.create_index(op.f("ix_asset_seizures_case_id"), "asset_seizures", ["case_id"], unique=False)
    op.create_table(
        "case_entities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("selectors", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("added_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_entities_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_entities")),
    )
    op.create_index(op.f("ix_case_entities_case_id"), "case_entities", ["case_id"], unique=False)
    op.create_table(
        "case_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.UniqueConstraint("seq", name=op.f("uq_case_events_seq")),
    )
    op.create_index("ix_case_events_case_seq", "case_events", ["case_id", "seq"], unique=False)
    op.create_table(
        "case_members",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("added_by", sa.String(length=80), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "role in ('lead', 'member', 'observer')", name=op.f("ck_case_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_members_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_case_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "user_id", name=op.f("pk_case_members")),
    )
    op.create_index(
        "ix_case_members_user_case",
        "case_members",
        ["user_id", "case_id"],
        unique=False,
        postgresql_include=["expires_at"],
    )
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_notes_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notes")),
    )
    op.create_index(op.f("ix_case_notes_case_id"), "case_notes", ["case_id"], unique=False)
    op.create_table(
        "case_records",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("linked_by", sa.String(length=80), nullable=False),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_records_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_case_records_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "record_id", name=op.f("pk_case_records")),
    )
    op.create_index(op.f("ix_case_records_record_id"), "case_records", ["record_id"], unique=False)
    op.create_table(
        "case_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status in ('todo', 'doing', 'done')", name=op.f("ck_case_tasks_status")
        ),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_case_tasks_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_tasks_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_tasks")),
    )
    op.create_index(op.f("ix_case_tasks_case_id"), "case_tasks", ["case_id"], unique=False)
    op.create_table(
        "drug_seizures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("substance", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("quantity_unit", sa.String(length=10), nullable=False),
        sa.Column("purity_pct", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("seized_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "quantity_unit in ('kg', 'g', 'tablets', 'doses', 'plants')",
            name=op.f("ck_drug_seizures_quantity_unit"),
        ),
        sa.CheckConstraint(
            "substance in ('herbal_cannabis', 'cannabis_resin', 'cannabis_plants', 'cocaine', 'crack', 'heroin', 'amphetamine', 'methamphetamine', 'mdma', 'synthetic_cathinones_nps', 'other')",
            name=op.f("ck_drug_seizures_substance"),
        ),
        sa.CheckConstraint(
            "purity_pct is null or purity_pct between 0 and 100",
            name=op.f("ck_drug_seizures_purity"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_drug_seizures_quantity")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_drug_seizures_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drug_seizures")),
    )
    op.create_index(op.f("ix_drug_seizures_case_id"), "drug_seizures", ["case_id"], unique=False)
    op.create_table(
        "escalations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("from_unit_id", sa.Uuid(), nullable=False),
        sa.Column("to_unit_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=80), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "priority in ('routine', 'high', 'urgent')", name=op.f("ck_escalations_priority")
        ),
        sa.CheckConstraint(
            "status in ('pending', 'accepted', 'returned', 'declined')",
            name=op.f("ck_escalations_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_escalations_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["from_unit_id"], ["units.id"], name=op.f("fk_escalations_from_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["to_unit_id"], ["units.id"], name=op.f("fk_escalations_to_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    op.create_index(
        "ix_escalations_pending_order",
        "escalations",
        ["priority_rank", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_escalations_queue",
        "escalations",
        ["to_unit_id", "status", "priority_rank", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_escalations_pending_case",
        "escalations",
        ["case_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_escalations_pending_case",
        table_name="escalations",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_escalations_queue", table_name="escalations")
    op.drop_index(
        "ix_escalations_pending_order",
        table_name="escalations",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("escalations")
    op.drop_index(op.f("ix_drug_seizures_case_id"), table_name="drug_seizures")
    op.drop_table("drug_seizures")
    op.drop_index(op.f("ix_case_tasks_case_id"), table_name="case_tasks")
    op.drop_table("case_tasks")
    op.drop_index(op.f("ix_case_records_record_id"), table_name="case_records")
    op.drop_table("case_records")
    op.drop_index(op.f("ix_case_notes_case_id"), table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index(
        "ix_case_members_user_case", table_name="case_members", postgresql_include=["expires_at"]
    )
    op.drop_table("case_members")
    op.drop_index("ix_case_events_case_seq", table_name="case_events")
    op.drop_table("case_events")
    op.drop_index(op.f("ix_case_entities_case_id"), table_name="case_entities")
    op.drop_table("case_entities")
    op.drop_index(op.f("ix_asset_seizures_case_id"), table_name="asset_seizures")
    op.drop_table("asset_seizures")
    op.drop_index(op.f("ix_arrests_case_id"), table_name="arrests")
    op.drop_table("arrests")
    op.drop_index("ix_cases_custodians", table_name="cases", postgresql_using="gin")
    op.drop_index("ix_cases_created", table_name="cases")
    op.drop_table("cases")
    op.drop_table("case_counters")
