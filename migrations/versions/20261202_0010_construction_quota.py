"""construction quotas: the annual construction-land quota per county (approval compliance check)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 21:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('construction_quota',
    sa.Column('county_code', sa.Text(), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('quota_m2', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('county_code', 'year', name=op.f('pk_construction_quota')),
    comment='年度计划指标: the construction-land quota of a county for a year (m²).'
    )


def downgrade() -> None:
    op.drop_table('construction_quota')
