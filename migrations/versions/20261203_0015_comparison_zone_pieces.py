"""comparison_zone_piece: the plan zones, urban development boundary, ecological red line and
counties cut by ST_Subdivide once, kept between comparison runs.

Every run used to subdivide them again before computing its patches' zone and county areas
(bench batch: ~0.5 s of a 1.8 s prepare stage on two connections). The pieces depend only on
those four tables and the run's `subdivide_vertices`; `comparison_zone_cache` records the
fingerprint they were cut from (the vertices and an MD5 over the rows they are cut from), and a
run finding another fingerprint cuts them again (services.comparison.zone_pieces).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'comparison_zone_piece',
        sa.Column('kind', sa.Text(), nullable=False),
        sa.Column('code', sa.Text(), nullable=False),
        sa.Column('city', sa.Text(), nullable=True),
        sa.Column('geom', Geometry('GEOMETRY', srid=4490, spatial_index=False), nullable=False),
        comment='比对核查: zones and counties cut by ST_Subdivide, reused by comparison runs')
    op.create_index('idx_comparison_zone_piece_geom', 'comparison_zone_piece', ['geom'], postgresql_using='gist')
    op.create_table(
        'comparison_zone_cache',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.Text(), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint('id = 1', name='ck_comparison_zone_cache_one_row'),
        sa.PrimaryKeyConstraint('id', name='pk_comparison_zone_cache'),
        comment='比对核查: what comparison_zone_piece was cut from (tables fingerprint, subdivide vertices)')


def downgrade() -> None:
    op.drop_table('comparison_zone_cache')
    op.drop_index('idx_comparison_zone_piece_geom', table_name='comparison_zone_piece')
    op.drop_table('comparison_zone_piece')
