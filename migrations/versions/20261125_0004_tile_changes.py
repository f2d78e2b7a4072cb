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


LAYERS_AT_0004 = (
    "admin_division", "land_use", "plan_zone", "eco_redline", "urban_boundary", "basic_farmland", "imagery_epoch",
    "approval", "supply", "development_report", "consolidation_project", "enforcement_case", "change_patch",
    "violation_lead", "mining_right", "mine_report", "hazard_point", "disaster_event", "disaster_report")


def upgrade() -> None:
    # The layer tables as they stood at this revision (a later layer's table does not exist
    # yet); tests/test_vector_tiles.py checks every layer table carries the triggers, and a new
    # layer's revision calls `attach_change_triggers` with its own table.
    from tiles.changes import TABLES_DDL, attach_change_triggers, function_ddl
    for statement in TABLES_DDL + function_ddl(notify=False):
        op.execute(statement)
    attach_change_triggers(op.execute, list(LAYERS_AT_0004))


def downgrade() -> None:
    from tiles.changes import detach_change_triggers
    detach_change_triggers(op.execute, list(LAYERS_AT_0004))
    op.execute("DROP SCHEMA IF EXISTS tile_state CASCADE")
