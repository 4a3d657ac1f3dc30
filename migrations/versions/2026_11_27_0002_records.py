"""records: intelligence records, versions, selectors, attachments, grants

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:15:41.366563
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), nullable=True),
        sa.Column("author_client_id", sa.Uuid(), nullable=True),
        sa.Column("author_agency", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commune", sa.String(length=200), nullable=True),
        sa.Column("departement", sa.String(length=3), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("drug_types", sa.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("source_reliability", sa.String(length=1), nullable=False),
        sa.Column("information_assessment", sa.SmallInteger(), nullable=False),
        sa.Column("handling_code", sa.String(length=2), nullable=False),
        sa.Column("handling_note", sa.Text(), nullable=True),
        sa.Column("marking", sa.String(length=2), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String(length=80)), nullable=False),
        sa.Column("entities", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("search", postgresql.TSVECTOR(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
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
            "handling_code <> 'H3' or handling_note is not null", name=op.f("ck_records_h3_note")
        ),
        sa.CheckConstraint(
            "handling_code in ('H0', 'H1', 'H2', 'H3')", name=op.f("ck_records_handling_code")
        ),
        sa.CheckConstraint("marking in ('NP', 'DR')", name=op.f("ck_records_marking")),
        sa.CheckConstraint(
            "scope in ('agency', 'unit', 'chain', 'network')", name=op.f("ck_records_scope")
        ),
        sa.CheckConstraint(
            "source_reliability in ('A', 'B', 'C', 'X')", name=op.f("ck_records_reliability")
        ),
        sa.CheckConstraint(
            "(author_user_id is null) <> (author_client_id is null)",
            name=op.f("ck_records_one_author"),
        ),
        sa.CheckConstraint(
            "information_assessment between 1 and 4", name=op.f("ck_records_assessment")
        ),
        sa.ForeignKeyConstraint(
            ["author_agency"], ["agencies.code"], name=op.f("fk_records_author_agency_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["author_client_id"],
            ["service_clients.id"],
            name=op.f("fk_records_author_client_id_service_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["users.id"], name=op.f("fk_records_author_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_records_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
        sa.UniqueConstraint("seq", name=op.f("uq_records_seq")),
    )
    op.create_index(
        "ix_records_drug_types", "records", ["drug_types"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_records_occurred_at", "records", ["occurred_at"], unique=False)
    op.create_index(
        "ix_records_search", "records", ["search"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_records_unit_seq", "records", ["unit_id", "seq"], unique=False)
    op.create_table(
        "record_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=120), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_attachments_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_attachments")),
    )
    op.create_index(
        op.f("ix_record_attachments_record_id"), "record_attachments", ["record_id"], unique=False
    )
    op.create_table(
        "record_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("consented", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "reason in ('case_custody', 'case_team', 'escalation', 'access_request')",
            name=op.f("ck_record_grants_reason"),
        ),
        sa.CheckConstraint(
            "(unit_id is null) <> (user_id is null)", name=op.f("ck_record_grants_one_grantee")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_grants_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_record_grants_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_record_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_grants")),
    )
    op.create_index("ix_record_grants_record", "record_grants", ["record_id"], unique=False)
    op.create_index("ix_record_grants_unit", "record_grants", ["unit_id"], unique=False)
    op.create_index("ix_record_grants_user", "record_grants", ["user_id"], unique=False)
    op.create_table(
        "record_selectors",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_selectors_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("record_id", "type", "value", name=op.f("pk_record_selectors")),
    )
    op.create_index(
        "ix_record_selectors_type_value", "record_selectors", ["type", "value"], unique=False
    )
    op.create_table(
        "record_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_by", sa.String(length=80), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_versions_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_versions")),
        sa.UniqueConstraint("record_id", "version", name=op.f("uq_record_versions_record_id")),
    )


def downgrade() -> None:
    op.drop_table("record_versions")
    op.drop_index("ix_record_selectors_type_value", table_name="record_selectors")
    op.drop_table("record_selectors")
    op.drop_index("ix_record_grants_user", table_name="record_grants")
    op.drop_index("ix_record_grants_unit", table_name="record_grants")
    op.drop_index("ix_record_grants_record", table_name="record_grants")
    op.drop_table("record_grants")
    op.drop_index(op.f("ix_record_attachments_record_id"), table_name="record_attachments")
    op.drop_table("record_attachments")
    op.drop_index("ix_records_unit_seq", table_name="records")
    op.drop_index("ix_records_search", table_name="records", postgresql_using="gin")
    op.drop_index("ix_records_occurred_at", table_name="records")
    op.drop_index("ix_records_drug_types", table_name="records", postgresql_using="gin")
    op.drop_table("records")
