"""Clip re-renders: a job may be the re-render of one clip of another job (its parent).

``jobs.parent_id`` names the job whose clip it renders again and ``jobs.clip_index`` which clip;
both are NULL for a job made from a video. Children go with their parent (ON DELETE CASCADE where
the database enforces it; JobStore.delete removes them explicitly too).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("clip_index", sa.Integer, nullable=True))
        batch.create_index("ix_jobs_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_parent_id")
        batch.drop_column("clip_index")
        batch.drop_column("parent_id")
