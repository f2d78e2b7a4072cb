"""approval compliance checks: the stored results (table approval_check, the latest counts) and the
latest colour on the approval (approval.compliance, shown through the layer registry)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('approval', sa.Column('compliance', sa.Text(), nullable=True, comment='合规性核查 Compliance check'))
    op.create_table('approval_check',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('approval_id', sa.BigInteger(), nullable=False),
    sa.Column('colour', sa.Text(), nullable=False),
    sa.Column('reasons', postgresql.JSONB(astext_type=sa.Text()), nullable=False,
              comment="each check's colour, text (zh, en) and area"),
    sa.Column('figures', postgresql.JSONB(astext_type=sa.Text()), nullable=False,
              comment='area, farmland, balanced, basic farmland (m²)'),
    sa.Column('checked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('triggered_by', sa.Text(), nullable=False),
    sa.Column('import_batch_id', sa.BigInteger(), nullable=True, comment='the registering batch'),
    sa.Column('requested_by', sa.Text(), nullable=False),
    sa.CheckConstraint("colour IN ('green', 'yellow', 'red')", name='ck_approval_check_colour'),
    sa.CheckConstraint("triggered_by IN ('registration', 'on_demand')", name='ck_approval_check_triggered_by'),
    sa.CheckConstraint("(triggered_by = 'registration') = (import_batch_id IS NOT NULL)",
                       name='ck_approval_check_batch'),
    sa.ForeignKeyConstraint(['approval_id'], ['approval.id'], name=op.f('fk_approval_check_approval_id_approval'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_batch_id'], ['import_batch.id'],
                            name=op.f('fk_approval_check_import_batch_id_import_batch')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_check')),
    comment='建设用地审批合规性核查: the stored compliance checks of approvals (the latest counts).'
    )
    op.create_index(op.f('ix_approval_check_approval_id'), 'approval_check', ['approval_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_approval_check_approval_id'), table_name='approval_check')
    op.drop_table('approval_check')
    op.drop_column('approval', 'compliance')
