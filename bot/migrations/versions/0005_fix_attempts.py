"""fix attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 10:18:23.272471
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fixattempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("repository_id", sa.BigInteger(), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=True),
        sa.Column("branch", sqlmodel.sql.sqltypes.AutoString(length=250), nullable=True),
        sa.Column("fix_pr_number", sa.Integer(), nullable=True),
        sa.Column("commit_sha", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("gate_results", sa.JSON(), nullable=False),
        sa.Column("diff_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "working",
                "awaiting_approval",
                "opened",
                "refused",
                "merged",
                "ignored",
                "resolved",
                "human_edited",
                name="fixoutcome",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("requester", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["repository_id"], ["repository.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "pr_number", "fingerprint"),
    )
    with op.batch_alter_table("fixattempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fixattempt_installation_id"), ["installation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fixattempt_outcome"), ["outcome"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_fixattempt_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_fixattempt_rule_id"), ["rule_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fixattempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fixattempt_rule_id"))
        batch_op.drop_index(batch_op.f("ix_fixattempt_repository_id"))
        batch_op.drop_index(batch_op.f("ix_fixattempt_outcome"))
        batch_op.drop_index(batch_op.f("ix_fixattempt_installation_id"))

    op.drop_table("fixattempt")
