"""import batches (导入批次): who imported which file into which layer, its report, and the ids it inserted

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 07:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('import_batch',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('layer', sa.Text(), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('file_sha256', sa.Text(), nullable=False),
    sa.Column('county_code', sa.Text(), nullable=True),
    sa.Column('source_crs', sa.Integer(), nullable=True),
    sa.Column('imported_by', sa.Text(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_inserted', sa.Integer(), nullable=False),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rolled_back_by', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_batch')),
    comment='导入批次: one committed import of a submitted file into a layer.'
    )
    op.create_index(op.f('ix_import_batch_file_sha256'), 'import_batch', ['file_sha256'], unique=False)
    op.create_table('import_batch_row',
    sa.Column('batch_id', sa.BigInteger(), nullable=False),
    sa.Column('row_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['import_batch.id'], name=op.f('fk_import_batch_row_batch_id_import_batch')),
    sa.PrimaryKeyConstraint('batch_id', 'row_id', name=op.f('pk_import_batch_row')),
    comment='The layer-table ids a batch inserted (for rollback).'
    )


def downgrade() -> None:
    op.drop_table('import_batch_row')
    op.drop_index(op.f('ix_import_batch_file_sha256'), table_name='import_batch')
    op.drop_table('import_batch')
