"""department tokens for the internal OGC API (stored as SHA-256 hashes)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:10:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'department_token',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('department', sa.Text(), nullable=False, comment='部门 Department'),
        sa.Column('token_hash', sa.Text(), nullable=False, comment='SHA-256 of the token; the token itself is never stored'),
        sa.Column('token_hint', sa.Text(), nullable=False, comment='First characters of the token, to tell tokens apart'),
        sa.Column('collections', postgresql.ARRAY(sa.Text()), nullable=False, comment='Collections granted'),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_department_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_department_token_token_hash')),
        comment='部门令牌 Department tokens for the internal OGC API',
    )


def downgrade() -> None:
    op.drop_table('department_token')
