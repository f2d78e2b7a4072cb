"""tile change and token notifications: servers keep the tile cache and token checks in-process

Every change statement on a layer also sends NOTIFY onemap_tile_change '<layer>', and every
update or delete of department tokens NOTIFY onemap_token_change, both delivered at commit:
the servers delete the cached tiles of changed boxes, and forget cached token checks, at once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:00:00
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from services.department_tokens import NOTIFY_DDL
    from tiles.changes import function_ddl
    for statement in function_ddl(notify=True) + NOTIFY_DDL:
        op.execute(statement)


def downgrade() -> None:
    from services.department_tokens import DROP_NOTIFY_DDL
    from tiles.changes import function_ddl
    for statement in function_ddl(notify=False) + DROP_NOTIFY_DDL:
        op.execute(statement)
