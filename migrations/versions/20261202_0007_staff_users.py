"""staff accounts (工作人员账号): role, region scope, argon2id password hash, lock-out state

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 20:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_user',
        sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column('username', sa.Text(), nullable=False),
        sa.Column('display_name', sa.Text(), nullable=False),
        sa.Column('role', sa.Text(), nullable=False),
        sa.Column('region_code', sa.Text(), nullable=False,
                  comment='GB/T 2260 code of the user\'s scope (province, city or county)'),
        sa.Column('password_hash', sa.Text(), nullable=False,
                  comment='argon2id; the password itself is never stored'),
        sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('session_epoch', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'supervisor', 'inspector', 'clerk')", name='ck_staff_user_role'),
        sa.CheckConstraint("region_code ~ '^[1-9][0-9]{5}$'", name='ck_staff_user_region_code'),
        sa.CheckConstraint('username = lower(username)', name='ck_staff_user_username_lower'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
        sa.UniqueConstraint('username', name=op.f('uq_staff_user_username')),
        comment='工作人员账号 Staff accounts: role, region scope, password hash, lock-out state.',
    )


def downgrade() -> None:
    op.drop_table('staff_user')
