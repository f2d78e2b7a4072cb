"""public views: schema pub, one view per published layer (public fields, public rows)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Derived from the registry as it stands; tests/test_ogc_views.py fails when the registry
    # and the views drift apart, and a new revision then calls this again.
    from services.publication import replace_public_views
    replace_public_views(op.execute)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS pub CASCADE")
