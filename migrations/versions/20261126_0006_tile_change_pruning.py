"""tile change pruning: each layer remembers through which version its change boxes were pruned

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:00:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE tile_state.layer_version ADD COLUMN pruned_through bigint NOT NULL DEFAULT 0")
    op.execute("COMMENT ON COLUMN tile_state.layer_version.pruned_through IS "
               "'Change boxes up to this version were deleted: a tile cached before it is re-rendered'")


def downgrade() -> None:
    op.execute("ALTER TABLE tile_state.layer_version DROP COLUMN pruned_through")
