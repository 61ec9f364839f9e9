"""The ``pacing`` table: per key (``provider:<name>``, ``slack:<channel>``), when its next turn
is due, so calls every process makes to one provider or one Slack channel keep one pace
together (:mod:`bot.store.pacing`). ``next_at`` is ISO text in UTC, like every timestamp."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_pacing"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pacing",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("next_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pacing")
