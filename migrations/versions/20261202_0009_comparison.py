"""comparison runs and results: the run record, the per-patch results layer, leads linked to runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:00:00
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('comparison_run',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('batch', sa.Text(), nullable=False),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('requested_by', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('patches_total', sa.Integer(), nullable=False),
    sa.Column('patches_done', sa.Integer(), nullable=False),
    sa.Column('last_patch_id', sa.BigInteger(), nullable=True),
    sa.Column('stage', sa.Text(), nullable=True),
    sa.Column('timings', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('counts', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comparison_run')),
    comment='比对核查批次: one comparison run over a batch of change patches.'
    )
    op.create_index(op.f('ix_comparison_run_batch'), 'comparison_run', ['batch'], unique=False)
    op.create_geospatial_table('comparison_result',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('patch_id', sa.BigInteger(), nullable=False, comment='变化图斑 Change patch'),
    sa.Column('patch_no', sa.Text(), nullable=False, comment='图斑编号 Patch number'),
    sa.Column('batch', sa.Text(), nullable=False, comment='监测批次 Monitoring batch'),
    sa.Column('run_id', sa.BigInteger(), nullable=False, comment='比对批次 Comparison run'),
    sa.Column('kind', sa.Text(), nullable=False, comment='变化类型 Change kind'),
    sa.Column('category', sa.Text(), nullable=False, comment='主要类别 Leading category'),
    sa.Column('categories', sa.ARRAY(sa.Text()), nullable=False, comment='比对类别 Categories'),
    sa.Column('violation', sa.Boolean(), nullable=False, comment='疑似违法 Violation'),
    sa.Column('area_m2', sa.Double(), nullable=True, comment='图斑面积 Patch area'),
    sa.Column('approval_m2', sa.Double(), nullable=True, comment='已批面积 Covered by approvals'),
    sa.Column('unapproved_m2', sa.Double(), nullable=True, comment='未批面积 Not covered by approvals'),
    sa.Column('supply_m2', sa.Double(), nullable=True, comment='已供面积 Covered by supply'),
    sa.Column('unsupplied_m2', sa.Double(), nullable=True, comment='批而未供面积 Approved but not supplied'),
    sa.Column('basic_farmland_m2', sa.Double(), nullable=True, comment='占用基本农田 Basic farmland taken'),
    sa.Column('farmland_m2', sa.Double(), nullable=True, comment='占用耕地 Farmland taken'),
    sa.Column('illegal_farmland_m2', sa.Double(), nullable=True, comment='违法占用耕地 Farmland taken without approval'),
    sa.Column('restricted_m2', sa.Double(), nullable=True, comment='限制/禁止建设区面积 In 030/040 zones'),
    sa.Column('outside_boundary_m2', sa.Double(), nullable=True, comment='城镇开发边界外面积 Outside the urban development boundary'),
    sa.Column('eco_redline_m2', sa.Double(), nullable=True, comment='生态保护红线内面积 In the ecological red line'),
    sa.Column('zone_m2', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='管制区面积 Area per plan zone code (m2)'),
    sa.Column('land_use_m2', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='占用地类面积 Area per land-use class taken (m2)'),
    sa.Column('county_m2', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='分县面积 Area per county (m2)'),
    sa.Column('licence_no', sa.Text(), nullable=True, comment='所属采矿权 Own mining right (licence)'),
    sa.Column('own_right_m2', sa.Double(), nullable=True, comment='矿权内面积 Inside its own right'),
    sa.Column('outside_right_m2', sa.Double(), nullable=True, comment='矿权外面积 Outside its own right'),
    sa.Column('county_code', sa.Text(), nullable=False, comment='县级行政区代码 County code (GB/T 2260)'),
    sa.Column('city_code', sa.Text(), nullable=False, comment='地级行政区代码 City code (GB/T 2260)'),
    sa.Column('compared_at', sa.DateTime(timezone=True), nullable=False, comment='比对时间 Compared at'),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4490, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['patch_id'], ['change_patch.id'], name=op.f('fk_comparison_result_patch_id_change_patch')),
    sa.ForeignKeyConstraint(['run_id'], ['comparison_run.id'], name=op.f('fk_comparison_result_run_id_comparison_run')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comparison_result')),
    sa.UniqueConstraint('patch_id', name=op.f('uq_comparison_result_patch_id')),
    )
    op.create_table_comment('comparison_result', '比对核查结果 Comparison results')  # geoalchemy2's create_geospatial_table drops comment=
    op.create_geospatial_index('idx_comparison_result_geom', 'comparison_result', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_comparison_result_batch'), 'comparison_result', ['batch'], unique=False)
    op.create_index(op.f('ix_comparison_result_category'), 'comparison_result', ['category'], unique=False)
    op.create_index(op.f('ix_comparison_result_city_code'), 'comparison_result', ['city_code'], unique=False)
    op.create_index(op.f('ix_comparison_result_county_code'), 'comparison_result', ['county_code'], unique=False)
    op.create_index(op.f('ix_comparison_result_run_id'), 'comparison_result', ['run_id'], unique=False)
    op.create_foreign_key(op.f('fk_violation_lead_run_id_comparison_run'), 'violation_lead', 'comparison_run', ['run_id'], ['id'])
    from tiles.changes import attach_change_triggers
    attach_change_triggers(op.execute, ['comparison_result'])


def downgrade() -> None:
    from tiles.changes import detach_change_triggers
    detach_change_triggers(op.execute, ['comparison_result'])

    op.drop_constraint(op.f('fk_violation_lead_run_id_comparison_run'), 'violation_lead', type_='foreignkey')
    op.drop_index(op.f('ix_comparison_result_run_id'), table_name='comparison_result')
    op.drop_index(op.f('ix_comparison_result_county_code'), table_name='comparison_result')
    op.drop_index(op.f('ix_comparison_result_city_code'), table_name='comparison_result')
    op.drop_index(op.f('ix_comparison_result_category'), table_name='comparison_result')
    op.drop_index(op.f('ix_comparison_result_batch'), table_name='comparison_result')
    op.drop_geospatial_index('idx_comparison_result_geom', table_name='comparison_result', column_name='geom')
    op.drop_geospatial_table('comparison_result')
    op.drop_index(op.f('ix_comparison_run_batch'), table_name='comparison_run')
    op.drop_table('comparison_run')
