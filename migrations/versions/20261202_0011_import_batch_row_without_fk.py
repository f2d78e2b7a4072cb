"""import_batch_row without its foreign key: one row-level RI check per inserted row cost ~1 s per
100,000 rows of a bulk import; the engine writes the batch and its rows in one transaction, and
batches are never deleted (a rollback marks them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 21:00:00
"""
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint('fk_import_batch_row_batch_id_import_batch', 'import_batch_row', type_='foreignkey')


def downgrade() -> None:
    op.create_foreign_key('fk_import_batch_row_batch_id_import_batch', 'import_batch_row', 'import_batch',
                          ['batch_id'], ['id'])
