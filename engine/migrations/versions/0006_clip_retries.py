"""Clip retries: the job row's durable record of the clip tasks that ran again (cluster issue).

``jobs.clip_retries`` is a JSON list, one entry per clip task submitted again after it was lost with
its Ray node or worker process: ``{"clip", "try", "attempt", "node", "reason", "at"}``. NULL (read as
an empty list) for a job none of whose clips ran again. The job's events say the same, but they are
pruned after minutes; this stays with the job.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("clip_retries", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("clip_retries")
