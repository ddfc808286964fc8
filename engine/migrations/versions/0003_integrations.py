"""Integrations: webhooks (endpoints, deliveries, attempts), job settlements, usage metering, billing.

``users.plan`` becomes nullable: NULL is the install's default plan. Every stored plan was the
column's old default ("free") before billing existed, so those become NULL.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("plan", existing_type=sa.String(32), nullable=True, server_default=None)
        batch.add_column(sa.Column("plan_renews_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("stripe_customer_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stripe_subscription_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.String(128), nullable=True))
    op.execute("UPDATE users SET plan = NULL WHERE plan = 'free'")
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.String(100), nullable=False, server_default=""),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("disabled_at", sa.BigInteger, nullable=True),
        sa.Column("disabled_reason", sa.Text, nullable=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("endpoint_id", sa.String(32), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
        sa.Column("claimed_until", sa.BigInteger, nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(40), sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_table(
        "job_settlements",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settled_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("minutes", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_usage_records_user_period", "usage_records", ["user_id", "period"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("stripe_events", "usage_records", "job_settlements", "webhook_attempts",
                  "webhook_deliveries", "webhook_endpoints"):
        op.drop_table(table)
    op.execute("UPDATE users SET plan = 'free' WHERE plan IS NULL")
    with op.batch_alter_table("users") as batch:
        for column in ("webhook_secret", "stripe_subscription_id", "stripe_customer_id", "plan_renews_at"):
            batch.drop_column(column)
        batch.alter_column("plan", existing_type=sa.String(32), nullable=False, server_default="free")
