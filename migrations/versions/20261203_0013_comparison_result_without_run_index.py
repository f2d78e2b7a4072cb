"""comparison_result: no index on run_id. Nothing looks results up by run (the leads and a resumed
run find a chunk's rows by patch_id, the report by batch), and with run_id indexed every re-run
wrote a new entry into every index of the table for each row (run_id changes); without it the
upsert of a re-run can be a HOT update (run_id and compared_at change, no indexed column does).
Per 2,000-patch chunk of the bench batch, alternating: compare 260/370 ms vs 335/468 ms, leads
49/74 vs 62/89 ms (medians).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 09:20:00
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_comparison_result_run_id', table_name='comparison_result')


def downgrade() -> None:
    op.create_index('ix_comparison_result_run_id', 'comparison_result', ['run_id'], unique=False)
