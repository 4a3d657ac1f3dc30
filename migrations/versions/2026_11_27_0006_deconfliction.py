"""deconfliction: hits, access requests, exclusions, case selectors, planned operations

The selectors of entities already linked to cases are copied into case_selectors; hits
are found from the next filing on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 16:05:52.771400
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "common_selectors",
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("holders", sa.Integer(), nullable=False),
        sa.Column(
            "marked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("type", "value", name=op.f("pk_common_selectors")),
    )
    op.create_table(
        "selector_exclusions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("added_by", sa.String(length=80), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selector_exclusions")),
    )
    op.create_index("uq_selector_exclusions", "selector_exclusions", ["type", "value"], unique=True)
    op.create_table(
        "case_selectors",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_selectors_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "type", "value", name=op.f("pk_case_selectors")),
    )
    op.create_index(
        "ix_case_selectors_birth_date",
        "case_selectors",
        [sa.literal_column("split_part(value, '|', 3)")],
        unique=False,
        postgresql_where=sa.text("type = 'person'"),
    )
    op.create_index(
        "ix_case_selectors_type_value", "case_selectors", ["type", "value"], unique=False
    )
    op.execute(
        "insert into case_selectors (case_id, type, value, created_at) "
        "select case_id, split_part(s, ':', 1), substr(s, strpos(s, ':') + 1), min(created_at) "
        "from case_entities, unnest(selectors) as s group by 1, 2, 3"
    )
    op.create_table(
        "hits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("selector_type", sa.String(length=30), nullable=False),
        sa.Column("a_key", sa.String(length=120), nullable=False),
        sa.Column("a_value", sa.Text(), nullable=False),
        sa.Column("a_record_id", sa.Uuid(), nullable=True),
        sa.Column("a_case_id", sa.Uuid(), nullable=True),
        sa.Column("a_unit_id", sa.Uuid(), nullable=False),
        sa.Column("a_agency", sa.String(length=20), nullable=True),
        sa.Column("a_first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("b_key", sa.String(length=120), nullable=False),
        sa.Column("b_value", sa.Text(), nullable=False),
        sa.Column("b_record_id", sa.Uuid(), nullable=True),
        sa.Column("b_case_id", sa.Uuid(), nullable=True),
        sa.Column("b_unit_id", sa.Uuid(), nullable=False),
        sa.Column("b_agency", sa.String(length=20), nullable=True),
        sa.Column("b_first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind in ('exact', 'possible')", name=op.f("ck_hits_kind")),
        sa.CheckConstraint(
            "(a_record_id is null) <> (a_case_id is null)", name=op.f("ck_hits_a_item")
        ),
        sa.CheckConstraint(
            "(b_record_id is null) <> (b_case_id is null)", name=op.f("ck_hits_b_item")
        ),
        sa.CheckConstraint("a_key < b_key", name=op.f("ck_hits_ordered")),
        sa.ForeignKeyConstraint(["a_case_id"], ["cases.id"], name=op.f("fk_hits_a_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["a_record_id"], ["records.id"], name=op.f("fk_hits_a_record_id_records")
        ),
        sa.ForeignKeyConstraint(["a_unit_id"], ["units.id"], name=op.f("fk_hits_a_unit_id_units")),
        sa.ForeignKeyConstraint(["b_case_id"], ["cases.id"], name=op.f("fk_hits_b_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["b_record_id"], ["records.id"], name=op.f("fk_hits_b_record_id_records")
        ),
        sa.ForeignKeyConstraint(["b_unit_id"], ["units.id"], name=op.f("fk_hits_b_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hits")),
    )
    op.create_index("ix_hits_a_unit", "hits", ["a_unit_id", "created_at"], unique=False)
    op.create_index("ix_hits_b_unit", "hits", ["b_unit_id", "created_at"], unique=False)
    op.create_index(
        "uq_hits_pair",
        "hits",
        ["kind", "selector_type", "a_value", "b_value", "a_key", "b_key"],
        unique=True,
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("radius_m", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
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
            "kind in ('search', 'surveillance', 'controlled_delivery', 'arrest', 'undercover')",
            name=op.f("ck_operations_kind"),
        ),
        sa.CheckConstraint("status in ('planned', 'cancelled')", name=op.f("ck_operations_status")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_operations_window")),
        sa.CheckConstraint(
            "lat between -90 and 90 and lon between -180 and 180",
            name=op.f("ck_operations_position"),
        ),
        sa.CheckConstraint("radius_m between 1 and 50000", name=op.f("ck_operations_radius")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_operations_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_operations_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_operations_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
    )
    op.create_index("ix_operations_unit", "operations", ["unit_id", "starts_at"], unique=False)
    op.create_index(
        "ix_operations_window",
        "operations",
        [sa.literal_column("tstzrange(starts_at, ends_at)")],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'planned'"),
    )
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hit_id", sa.Uuid(), nullable=False),
        sa.Column("requester_id", sa.Uuid(), nullable=False),
        sa.Column("requester_unit_id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("target_unit_id", sa.Uuid(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status in ('pending', 'approved', 'declined')", name=op.f("ck_access_requests_status")
        ),
        sa.CheckConstraint(
            "(record_id is null) <> (case_id is null)", name=op.f("ck_access_requests_one_item")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_access_requests_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["hit_id"], ["hits.id"], name=op.f("fk_access_requests_hit_id_hits")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"], ["records.id"], name=op.f("fk_access_requests_record_id_records")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["users.id"], name=op.f("fk_access_requests_requester_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["requester_unit_id"],
            ["units.id"],
            name=op.f("fk_access_requests_requester_unit_id_units"),
        ),
        sa.ForeignKeyConstraint(
            ["target_unit_id"], ["units.id"], name=op.f("fk_access_requests_target_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    op.create_index(
        "ix_access_requests_requester",
        "access_requests",
        ["requester_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_access_requests_target",
        "access_requests",
        ["target_unit_id", "status", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_access_requests_pending",
        "access_requests",
        ["hit_id", "requester_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "operation_conflicts",
        sa.Column("a_id", sa.Uuid(), nullable=False),
        sa.Column("b_id", sa.Uuid(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("a_id < b_id", name=op.f("ck_operation_conflicts_ordered")),
        sa.ForeignKeyConstraint(
            ["a_id"],
            ["operations.id"],
            name=op.f("fk_operation_conflicts_a_id_operations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["b_id"],
            ["operations.id"],
            name=op.f("fk_operation_conflicts_b_id_operations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("a_id", "b_id", name=op.f("pk_operation_conflicts")),
    )
    op.create_index(
        op.f("ix_operation_conflicts_b_id"), "operation_conflicts", ["b_id"], unique=False
    )
    op.add_column("notifications", sa.Column("hit_id", sa.Uuid(), nullable=True))
    op.add_column("notifications", sa.Column("operation_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_record_selectors_birth_date",
        "record_selectors",
        [sa.literal_column("split_part(value, '|', 3)")],
        unique=False,
        postgresql_where=sa.text("type = 'person'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_record_selectors_birth_date",
        table_name="record_selectors",
        postgresql_where=sa.text("type = 'person'"),
    )
    op.drop_column("notifications", "operation_id")
    op.drop_column("notifications", "hit_id")
    op.drop_index(op.f("ix_operation_conflicts_b_id"), table_name="operation_conflicts")
    op.drop_table("operation_conflicts")
    op.drop_index(
        "uq_access_requests_pending",
        table_name="access_requests",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_access_requests_target", table_name="access_requests")
    op.drop_index("ix_access_requests_requester", table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index(
        "ix_operations_window",
        table_name="operations",
        postgresql_using="gist",
        postgresql_where=sa.text("status = 'planned'"),
    )
    op.drop_index("ix_operations_unit", table_name="operations")
    op.drop_table("operations")
    op.drop_index("uq_hits_pair", table_name="hits")
    op.drop_index("ix_hits_b_unit", table_name="hits")
    op.drop_index("ix_hits_a_unit", table_name="hits")
    op.drop_table("hits")
    op.drop_index("ix_case_selectors_type_value", table_name="case_selectors")
    op.drop_index(
        "ix_case_selectors_birth_date",
        table_name="case_selectors",
        postgresql_where=sa.text("type = 'person'"),
    )
    op.drop_table("case_selectors")
    op.drop_index("uq_selector_exclusions", table_name="selector_exclusions")
    op.drop_table("selector_exclusions")
    op.drop_table("common_selectors")
