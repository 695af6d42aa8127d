"""outbound webhooks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 11:31:50.498515
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooksubscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installation_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("secret_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["installation_id"], ["installation.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhooksubscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhooksubscription_installation_id"), ["installation_id"], unique=False
        )

    op.create_table(
        "outbounddelivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending", "delivered", "dead", name="outboundstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", bot.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", bot.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["build_id"], ["build.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["webhooksubscription.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "build_id", "event"),
    )
    with op.batch_alter_table("outbounddelivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbounddelivery_build_id"), ["build_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbounddelivery_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbounddelivery_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbounddelivery_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outbounddelivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbounddelivery_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_outbounddelivery_status"))
        batch_op.drop_index(batch_op.f("ix_outbounddelivery_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbounddelivery_build_id"))

    op.drop_table("outbounddelivery")
    with op.batch_alter_table("webhooksubscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooksubscription_installation_id"))

    op.drop_table("webhooksubscription")
