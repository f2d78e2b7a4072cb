"""tile change tracking: a per-layer version and the dirty boxes of every change (vector tile cache)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 06:00:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Derived from the registry as it stands; tests/test_vector_tiles.py checks every layer
    # table carries the triggers, and a new layer's revision calls `attach_change_triggers`.
    from tiles.changes import TABLES_DDL, attach_change_triggers, function_ddl
    for statement in TABLES_DDL + function_ddl(notify=False):
        op.execute(statement)
    attach_change_triggers(op.execute)


def downgrade() -> None:
    from tiles.changes import detach_change_triggers
    detach_change_triggers(op.execute)
    op.execute("DROP SCHEMA IF EXISTS tile_state CASCADE")
