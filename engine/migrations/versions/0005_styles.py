"""Brand styles: an account's uploaded fonts and saved caption styles (issue 17 item 5).

``fonts``: one row per upload (the file itself is stored once per content under the data root:
fonts/<sha256>.ttf|otf). ``caption_styles``: a saved captionStyle object (and optionally a caption
preset), used as a job's ``captionStyleId``. Both go with their account (ON DELETE CASCADE).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "fonts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("style", sa.String(200), nullable=False),
        sa.Column("full_name", sa.String(300), nullable=False),
        sa.Column("file", sa.String(80), nullable=False, index=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("glyphs", sa.Integer, nullable=False),
        sa.Column("coverage", sa.JSON, nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "caption_styles",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("style", sa.JSON, nullable=False),
        sa.Column("caption_preset", sa.String(16), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("caption_styles")
    op.drop_table("fonts")
