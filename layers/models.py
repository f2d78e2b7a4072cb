"""SQLAlchemy (GeoAlchemy2) tables derived from the layer registry.

One table per layer: an identity `id`, the declared fields, and `geom` in EPSG:4490 with a
GiST index. The supervision-number tables are the only tables not derived from a layer.
Alembic migrations are generated from this metadata and checked against it by the tests.
"""
from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (ARRAY, BigInteger, Boolean, CheckConstraint, Column, Date, DateTime, Double, ForeignKey, Identity,
                        Index, Integer, MetaData, SmallInteger, Table, Text, UniqueConstraint, func)
from sqlalchemy.dialects.postgresql import INT8MULTIRANGE, JSONB

from layers.catalog import REGISTRY
from layers.codes import COMPLIANCE_COLOUR, COMPLIANCE_TRIGGER
from layers.registry import STAFF_ROLES, Field, FieldType, Layer, Link, STORAGE_SRID

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

_SQL_TYPES = {
    FieldType.TEXT: Text,
    FieldType.INTEGER: BigInteger,
    FieldType.FLOAT: Double,
    FieldType.DATE: Date,
    FieldType.DATETIME: lambda: DateTime(timezone=True),
    FieldType.BOOLEAN: Boolean,
    FieldType.CODE: Text,
    FieldType.CODES: lambda: ARRAY(Text),
    FieldType.JSON: JSONB,
}

supervision_number = Table(
    "supervision_number", metadata,
    Column("number", Text, primary_key=True),
    Column("region_code", Text, nullable=False),
    Column("year", SmallInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("serial", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("subject", Text),
    UniqueConstraint("region_code", "year", "kind", "serial", name="uq_supervision_number_parts"),
    comment="统一监管号: every number ever issued; rows are never deleted, so no number is reused.",
)

supervision_counter = Table(
    "supervision_counter", metadata,
    Column("region_code", Text, primary_key=True),
    Column("year", SmallInteger, primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("last_serial", Integer, nullable=False),
    comment="The last serial issued per region, year and kind; only ever increases.",
)


def _column(field: Field) -> Column:
    args = [ForeignKey(field.references)] if field.references else []
    return Column(field.name, _SQL_TYPES[field.type](), *args, nullable=not field.required,
                  unique=field.unique or None, index=field.indexed or None, comment=f"{field.zh} {field.en}")


def _layer_table(layer: Layer) -> Table:
    return Table(
        layer.table, metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        *(_column(f) for f in layer.fields),
        Column("geom", Geometry(layer.geometry.value, srid=STORAGE_SRID, spatial_index=True), nullable=False),
        comment=f"{layer.zh} {layer.en}",
    )


def _link_table(link: Link) -> Table:
    return Table(link.name, metadata, Column("id", BigInteger, Identity(), primary_key=True),
                 *(_column(f) for f in link.fields), comment=f"{link.zh} {link.en}")


LAYER_TABLES: dict[str, Table] = {layer.name: _layer_table(layer) for layer in REGISTRY}
LINK_TABLES: dict[str, Table] = {link.name: _link_table(link) for link in REGISTRY.links}


def table_for(name: str) -> Table:
    return LAYER_TABLES[REGISTRY[name].name]


# Import batches (导入批次): every committed import is recorded with who, when, the file's hash,
# counts and the validation report; the ids it inserted are kept so the batch can be rolled back.
import_batch = Table(
    "import_batch", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("layer", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", Text, nullable=False, index=True),
    Column("county_code", Text),
    Column("source_crs", Integer),
    Column("imported_by", Text, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_inserted", Integer, nullable=False),
    Column("report", JSONB, nullable=False),
    Column("rolled_back_at", DateTime(timezone=True)),
    Column("rolled_back_by", Text),
    # one range when the ids are contiguous (one INSERT … SELECT), not a row per feature (0014)
    Column("row_ids", INT8MULTIRANGE, nullable=False, server_default="{}",
           comment="The layer-table ids the batch inserted (for rollback)"),
    comment="导入批次: one committed import of a submitted file into a layer.",
)

# Staff accounts (工作人员账号): see services/accounts.py. The password is stored only as an
# argon2id hash; `session_epoch` grows when the password changes or the account is disabled,
# which ends every session opened before. The roles: STAFF_ROLES (layers/registry.py).

staff_user = Table(
    "staff_user", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("region_code", Text, nullable=False, comment="GB/T 2260 code of the user's scope (province, city or county)"),
    Column("password_hash", Text, nullable=False, comment="argon2id; the password itself is never stored"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", DateTime(timezone=True)),
    Column("session_epoch", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_login_at", DateTime(timezone=True)),
    CheckConstraint(f"role IN ({', '.join(repr(r) for r in STAFF_ROLES)})", name="ck_staff_user_role"),
    CheckConstraint("region_code ~ '^[1-9][0-9]{5}$'", name="ck_staff_user_region_code"),
    CheckConstraint("username = lower(username)", name="ck_staff_user_username_lower"),
    comment="工作人员账号 Staff accounts: role, region scope, password hash, lock-out state.",
)

# Comparison runs (比对核查批次): one run of services.comparison over a batch of change patches:
# its inputs and parameters, progress (so an interrupted run says where it stopped and can resume),
# per-stage timings and counts. The per-patch results are the layer `comparison_result`.
comparison_run = Table(
    "comparison_run", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("batch", Text, nullable=False, index=True),
    Column("parameters", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("patches_total", Integer, nullable=False),
    Column("patches_done", Integer, nullable=False),
    Column("last_patch_id", BigInteger),
    Column("stage", Text),
    Column("timings", JSONB, nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("error", Text),
    comment="比对核查批次: one comparison run over a batch of change patches.",
)

# The plan zones, urban development boundary, ecological red line and counties cut by ST_Subdivide
# for comparison runs, kept between runs; `comparison_zone_cache` (one row) records what they were
# cut from (services.comparison.zone_pieces rebuilds them when that changes).
comparison_zone_piece = Table(
    "comparison_zone_piece", metadata,
    Column("kind", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("city", Text),
    Column("geom", Geometry("GEOMETRY", srid=STORAGE_SRID, spatial_index=False), nullable=False),
    Index("idx_comparison_zone_piece_geom", "geom", postgresql_using="gist"),
    comment="比对核查: zones and counties cut by ST_Subdivide, reused by comparison runs",
)
comparison_zone_cache = Table(
    "comparison_zone_cache", metadata,
    Column("id", Integer, CheckConstraint("id = 1", name="ck_comparison_zone_cache_one_row"), primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="比对核查: what comparison_zone_piece was cut from (tables fingerprint, subdivide vertices)",
)

# Annual construction-land quotas (年度计划指标) per county, for the approval compliance check
# (services/compliance.py).
construction_quota = Table(
    "construction_quota", metadata,
    Column("county_code", Text, primary_key=True),
    Column("year", SmallInteger, primary_key=True),
    Column("quota_m2", Double, nullable=False),
    comment="年度计划指标: the construction-land quota of a county for a year (m²).",
)

# Approval compliance checks (建设用地审批合规性核查), services/compliance.py: every stored check of
# an approval, run at its registration (the import batch) or on demand (by whom); the latest (the
# highest id) is what counts and its colour is copied to `approval.compliance`. Deleting the
# approval (a batch rollback) deletes its checks.
approval_check = Table(
    "approval_check", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("approval_id", BigInteger, ForeignKey("approval.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("colour", Text, nullable=False),
    Column("reasons", JSONB, nullable=False, comment="each check's colour, text (zh, en) and area"),
    Column("figures", JSONB, nullable=False, comment="area, farmland, balanced, basic farmland (m²)"),
    Column("checked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("triggered_by", Text, nullable=False),
    Column("import_batch_id", BigInteger, ForeignKey("import_batch.id"), comment="the registering batch"),
    Column("requested_by", Text, nullable=False),
    CheckConstraint(f"colour IN ({', '.join(repr(c) for c in COMPLIANCE_COLOUR.codes)})",
                    name="ck_approval_check_colour"),
    CheckConstraint(f"triggered_by IN ({', '.join(repr(t) for t in COMPLIANCE_TRIGGER.codes)})",
                    name="ck_approval_check_triggered_by"),
    CheckConstraint("(triggered_by = 'registration') = (import_batch_id IS NOT NULL)",
                    name="ck_approval_check_batch"),
    comment="建设用地审批合规性核查: the stored compliance checks of approvals (the latest counts).",
)
