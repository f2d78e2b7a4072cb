"""比对核查: compare a batch of change patches with the one map, set-based in PostGIS.

Each change patch (遥感监测变化图斑) is overlaid with approvals, supply, plan zones, the urban
development boundary, the ecological red line, permanent basic farmland, the land-use status
and (mining patches) mining rights. Per patch the run stores its categories and the
ellipsoidal area (CGCS2000, `services.areas.area_sql`) of every overlap in `comparison_result`
(a layer of the registry), and every violating patch becomes a `violation_lead` linked to the
patch and the run. The rules, edge cases included, are written down in docs/comparison.md;
this module follows them.

A run works through its batch in chunks of patches (in spatial order: see _TODO_SQL). Each chunk is one
INSERT … SELECT over all its patches at once (one join per reference layer on GiST-indexed `&&` /
ST_Intersects, grouped per patch; big zone and county polygons cut with ST_Subdivide
beforehand), followed by one statement upserting the leads; the run record's progress is updated in the same transaction.
So an interrupted run says where it stopped (`last_patch_id`: the last patch of its last committed
chunk, `patches_done`, `stage`) and a later run of the batch resumes with the patches that have
no result of the run yet. Re-running a batch updates
results and leads in place (keyed by patch), never duplicating them.

    from services.comparison import run_comparison
    result = run_comparison(engine, "2026年度卫片执法第1批", requested_by="cli")
"""
from __future__ import annotations

import getpass
import json
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from sqlalchemy import Connection, Engine, create_engine, text

from layers.codes import COMPARISON_CATEGORY, FARMLAND_CLASSES
from services.areas import area_sql

# The leading category of a patch (styling, the result's `category`): the first it carries.
SEVERITY = ("basic_farmland", "unapproved", "beyond_extent", "unsupplied", "outside_plan", "unlicensed_mining",
            "beyond_boundary_mining", "expired_mining", "other", "legal")
VIOLATIONS = frozenset(SEVERITY) - {"legal", "other"}
assert set(SEVERITY) == set(COMPARISON_CATEGORY.codes)

STATUS_RUNNING, STATUS_FINISHED, STATUS_FAILED, STATUS_INTERRUPTED, STATUS_QUEUED = (
    "running", "finished", "failed", "interrupted", "queued")
log = logging.getLogger(__name__)
ENGINES = ("local", "dask")
LEAD_PREFIX = "WP"   # 卫片: leads from satellite comparison are numbered WP + patch number


class ComparisonError(Exception):
    """A comparison run cannot start or go on; the message says why."""


@dataclass(frozen=True)
class Parameters:
    """A run's parameters, stored with the run."""
    sliver_m2: float = 1.0           # overlaps below this count as none (digitising noise); > 0
    chunk_size: int = 2000           # patches per transaction
    subdivide_vertices: int = 256    # ST_Subdivide's max vertices for zones and counties
    workers: int = 2                 # chunks (dask: county partitions) compared at once, each on its own connection
    engine: str = "local"            # "local": threads in this process; "dask": county partitions on Dask distributed

    def __post_init__(self) -> None:
        if not 1e-6 <= self.sliver_m2 <= 1e6:     # 0 would flag every touching neighbour
            raise ComparisonError(f"parameter sliver_m2 must be between 1e-6 and 1e6 m², got {self.sliver_m2}")
        if not 1 <= self.chunk_size <= 1_000_000:
            raise ComparisonError(f"parameter chunk_size must be 1..1000000, got {self.chunk_size}")
        if not 1 <= self.workers <= 8:
            raise ComparisonError(f"parameter workers must be 1..8, got {self.workers}")
        if not 8 <= self.subdivide_vertices <= 10_000:
            raise ComparisonError(f"parameter subdivide_vertices must be 8..10000, got {self.subdivide_vertices}")
        if self.engine not in ENGINES:
            raise ComparisonError(f"parameter engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")

    @classmethod
    def from_dict(cls, values: dict | None) -> "Parameters":
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ComparisonError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        try:
            return cls(sliver_m2=float(values.get("sliver_m2", cls.sliver_m2)),
                       chunk_size=int(values.get("chunk_size", cls.chunk_size)),
                       subdivide_vertices=int(values.get("subdivide_vertices", cls.subdivide_vertices)),
                       workers=int(values.get("workers", cls.workers)),
                       engine=str(values.get("engine", cls.engine)))
        except (TypeError, ValueError) as exc:
            raise ComparisonError(f"invalid parameter value: {exc}") from None


@dataclass
class RunResult:
    run_id: int
    batch: str
    status: str
    patches_total: int
    patches_done: int
    resumed_from: int | None = None       # the patch id after which a resumed run went on
    counts: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


# --- the reference layers, prepared once per run ------------------------------------------

# a chunk's statements: its patch ids
_IDS = "id = ANY(CAST(:ids AS bigint[]))"

# The patches of the batch the run has still to compare (those without a result of the run: a
# chunk's results, leads and the run's progress are committed together), in the run's order:
# spatial (PostGIS's btree order of geometries, a space-filling curve), so that the patches of a
# chunk lie together and its probes into the reference layers' GiST indexes and tables hit the
# same pages one after the other (in id order, which is random in space, each chunk touched
# pages all over the province).
_TODO_SQL = """SELECT p.id FROM change_patch p WHERE p.batch = :b AND NOT EXISTS (
  SELECT 1 FROM comparison_result r WHERE r.patch_id = p.id AND r.run_id = :run) ORDER BY p.geom, p.id"""

def _for_run(sql: str, run_id: int) -> str:
    """`sql` with the run's own work tables (`…_rRUN` -> `…_r<run id>`)."""
    return sql.replace("_rRUN", f"_r{int(run_id)}")


# the run's work table (also one a killed process left behind, dropped by the next run of the batch)
_CLEANUP = "DROP TABLE IF EXISTS cmp_zone_m2_rRUN"

_PREPARE = [
    _CLEANUP,
    "CREATE UNLOGGED TABLE cmp_zone_m2_rRUN (id bigint, kind text, code text, city text, m2 float8)",
]

# What the zones' pieces are cut from: every polygon of the plan zones (by zone code), the urban
# development boundary, the ecological red line and the counties (with their city).
_ZONE_SOURCE = """SELECT 'plan' AS kind, zone_code AS code, NULL::text AS city, geom FROM plan_zone
  UNION ALL SELECT 'urban', 'urban', NULL, geom FROM urban_boundary
  UNION ALL SELECT 'eco', 'eco', NULL, geom FROM eco_redline
  UNION ALL SELECT 'county', a.code, coalesce(c.code, a.code), a.geom
    FROM admin_division a LEFT JOIN admin_division c ON c.code = a.parent_code AND c.level = 'city'
    WHERE a.level = 'county'"""
# The pieces (comparison_zone_piece, kept between runs: see zone_pieces) are what _ZONE_SOURCE
# gives cut with ST_Subdivide into pieces of at most :v vertices; their fingerprint is :v and an
# MD5 over _ZONE_SOURCE's rows (their hashes in sorted order: no row order matters; ~30 ms for the
# demo province's 1,400 zones and counties).
_ZONE_FINGERPRINT = f"""SELECT 'v' || CAST(:v AS int) || ':' || count(*) || ':'
         || coalesce(md5(string_agg(h, '' ORDER BY h)), '')
  FROM (SELECT md5(convert_to(concat_ws('|', z.kind, z.code, z.city), 'UTF8')
                   || coalesce(ST_AsEWKB(z.geom), ''::bytea)) AS h FROM ({_ZONE_SOURCE}) z) x"""
_ZONE_PIECES = [
    "DELETE FROM comparison_zone_piece",
    f"""INSERT INTO comparison_zone_piece (kind, code, city, geom)
    SELECT z.kind, z.code, z.city, ST_Subdivide(z.geom, :v) FROM ({_ZONE_SOURCE}) z WHERE z.geom IS NOT NULL""",
    """INSERT INTO comparison_zone_cache (id, fingerprint) VALUES (1, :f)
    ON CONFLICT (id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, built_at = now()""",
    "ANALYZE comparison_zone_piece",
]


def zone_pieces(conn: Connection, vertices: int) -> bool:
    """Make comparison_zone_piece hold the zones and counties as they are now, cut into pieces
    of at most `vertices` vertices: cut again only when the source tables or `vertices` changed
    since the last cut (not committed: the caller commits). Returns whether it cut them."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('onemap.comparison.zone_pieces'))"))
    fingerprint = conn.execute(text(_ZONE_FINGERPRINT), {"v": vertices}).scalar_one()
    if conn.execute(text("SELECT fingerprint FROM comparison_zone_cache WHERE id = 1")).scalar() == fingerprint:
        return False
    for statement in _ZONE_PIECES:
        conn.execute(text(statement), {"v": vertices, "f": fingerprint})
    return True


# Per (patch, kind, code) — plan zones (by zone code), the urban development boundary, the
# ecological red line and the counties (with their city) — the area of the patch inside, for
# every patch of the run at once. The pieces of the zones (zone_pieces) meeting the batch's
# extent drive the join: each
# probes change_patch's GiST index once, and PostGIS prepares the piece once for all the patches
# it meets. m2 is NULL when a piece covers the patch (its area is the patch's own), the piece's
# area when the patch meets one piece of the code, else the area of the union of its pieces.
# `:counties` true/false: the counties' or the zones' part only (two connections fill the table
# at once); NULL: both.
_ZONE_M2 = f"""INSERT INTO cmp_zone_m2_rRUN
WITH box AS (SELECT ST_SetSRID(ST_Extent(geom)::geometry, 4490) AS g FROM change_patch
             WHERE batch = :batch),
z AS MATERIALIZED (
  SELECT z.kind, z.code, z.city, z.geom FROM comparison_zone_piece z, box
  WHERE z.geom && box.g AND (CAST(:counties AS boolean) IS NULL OR (z.kind = 'county') = :counties))
SELECT y.id, y.kind, y.code, y.city,
       CASE WHEN bool_or(y.cov) THEN NULL WHEN count(*) = 1 THEN min(y.m2)
            ELSE {area_sql('ST_Union(array_agg(y.piece))')} END AS m2
FROM (SELECT x.*, {area_sql('x.piece')} AS m2 FROM (
        SELECT p.id, z.kind, z.code, z.city, c.cov,
               CASE WHEN NOT c.cov THEN ST_CollectionExtract(ST_Intersection(p.geom, z.geom), 3) END AS piece
        FROM z JOIN change_patch p ON p.geom && z.geom AND p.batch = :batch
        CROSS JOIN LATERAL (SELECT ST_Covers(z.geom, p.geom) AS cov OFFSET 0) c
        WHERE c.cov OR ST_Intersects(z.geom, p.geom) OFFSET 0) x OFFSET 0) y
GROUP BY y.id, y.kind, y.code, y.city"""

_PREPARED = [
    "CREATE INDEX ON cmp_zone_m2_rRUN (id)",
    "ANALYZE cmp_zone_m2_rRUN",
]


A = area_sql  # noqa: E731 (short alias inside the SQL below)


def _pairs(table: str, alias: str, where: str = "", columns: str = "") -> str:
    """Subquery: every (patch of `p`, row of `table`) pair that meets (ST_Intersects, which
    brings its own `&&` index condition: a second explicit `&&` would test every index entry
    twice), with `cov` (the patch lies wholly inside the row: the overlay is skipped),
    `piece` (the patch's polygonal part inside the row: the patch itself when covered; touching
    gives an empty polygon) and `m2`, the piece's area (the patch's own when covered). Each
    expensive expression is evaluated once per pair (OFFSET 0 keeps the subqueries apart)."""
    return f"""(SELECT x.*, CASE WHEN x.cov THEN x.area ELSE {A('x.piece')} END AS m2 FROM (
      SELECT p.id, p.area, {columns} c.cov,
             CASE WHEN c.cov THEN p.geom ELSE ST_CollectionExtract(ST_Intersection(p.geom, {alias}.geom), 3) END AS piece
      FROM p JOIN {table} {alias} ON ST_Intersects({alias}.geom, p.geom){where}
      CROSS JOIN LATERAL (SELECT ST_CoveredBy(p.geom, {alias}.geom) AS cov OFFSET 0) c OFFSET 0) x OFFSET 0)"""


def _union(table: str, alias: str, where: str = "") -> str:
    """Subquery: per patch meeting a row of `table`, `g` = the union of its pieces (the patch
    itself when a row covers it: `cov`) and its area `m2`. A patch meeting one row (the common
    case) takes that row's piece as it is; ST_Union only runs for two rows or more."""
    return f"""SELECT u.id, u.cov, CASE WHEN u.cov THEN p.area WHEN u.n = 1 THEN u.m2 ELSE {A('u.g')} END AS m2,
             CASE WHEN u.cov THEN p.geom ELSE u.g END AS g
      FROM (SELECT y.id, bool_or(y.cov) AS cov, count(*) AS n, min(y.m2) AS m2,
                   CASE WHEN bool_or(y.cov) THEN NULL WHEN count(*) = 1 THEN (array_agg(y.piece))[1]
                        ELSE ST_Union(array_agg(y.piece)) END AS g
            FROM {_pairs(table, alias, where)} y GROUP BY y.id OFFSET 0) u JOIN p ON p.id = u.id"""


# Per (patch of `p`, zone kind, code): the area of the patch inside (from the run's zone table).
def _zone_areas(where: str = "") -> str:
    return f"""SELECT z.id, z.kind, z.code, z.city, coalesce(z.m2, p.area) AS m2
  FROM cmp_zone_m2_rRUN z JOIN p ON p.id = z.id WHERE {where or 'true'}"""


# Per patch of `p`: its area per county (`by_county`) and the county holding its largest part
# (ties: the lower code) with that county's city — the one rule for a patch's county, used by
# the comparison and by the Dask path's partitioning. Reads `zp` (_zone_areas) rows of counties.
_COUNTY = """
    SELECT k.id, jsonb_object_agg(k.code, k.m2) AS by_county,
           (array_agg(k.code ORDER BY k.m2 DESC, k.code))[1] AS county,
           (array_agg(k.city ORDER BY k.m2 DESC, k.code))[1] AS city
    FROM zp k WHERE k.kind = 'county' AND k.m2 > 0 GROUP BY k.id"""


def _leading() -> str:
    """SQL: the first category of SEVERITY the row's `categories` hold."""
    return "CASE " + " ".join(f"WHEN '{c}' = ANY(categories) THEN '{c}'" for c in SEVERITY) + " END"


# The Dask path's partitions: the batch's patches by county.
_PARTITION_SQL = f"""
WITH p AS MATERIALIZED (
  SELECT id, county_code, {A('geom')} AS area FROM change_patch WHERE batch = :batch),
zp AS ({_zone_areas("z.kind = 'county'")}),
ct AS ({_COUNTY})
SELECT coalesce(ct.county, p.county_code) AS county, array_agg(p.id ORDER BY p.id) AS ids
FROM p LEFT JOIN ct ON ct.id = p.id
GROUP BY 1 ORDER BY count(*) DESC, 1"""

# One statement per chunk: one set-based join per reference layer (grouped per patch), then
# the overlaps per patch (ov), its categories (flags, cat), and the upsert. The jsonb_object_agg calls
# (here and in _COUNTY) take no ORDER BY: jsonb keeps an object's keys in its own order, whatever
# order they came in, so sorting each group would change nothing (it cost ~10 % of a chunk).
_COMPARE_SQL = f"""
WITH p AS MATERIALIZED (
  SELECT id, patch_no, batch, kind, detected_on, county_code, geom, {A('geom')} AS area,
         (class_after = '1202' OR coalesce(temporary, false) OR coalesce(false_change, false)) AS other
  FROM change_patch WHERE batch = :batch AND {_IDS}
  ORDER BY geom),   -- the joins below probe the reference layers patch by patch in this order
ap AS MATERIALIZED ({_union('approval', 'a', ' AND a.approved_on <= p.detected_on')}),
sp AS MATERIALIZED ({_union('supply', 's', ' AND s.signed_on <= p.detected_on')}),
bf AS MATERIALIZED ({_union('basic_farmland', 'b')}),
lu AS MATERIALIZED (
  SELECT k.id, jsonb_object_agg(k.class_code, k.m2) FILTER (WHERE k.m2 > 0) AS by_class,
         sum(k.m2) FILTER (WHERE k.farmland) AS farmland, sum(k.illegal) AS illegal
  FROM (SELECT y.id, y.class_code, bool_or(y.farmland) AS farmland, sum(y.m2) AS m2, sum(y.illegal) AS illegal
        FROM (SELECT x.id, x.class_code, x.farmland, x.m2,
                     CASE WHEN x.farmland THEN CASE WHEN ap.id IS NULL THEN x.m2 WHEN ap.cov THEN 0
                          ELSE {A('ST_CollectionExtract(ST_Difference(x.piece, ap.g), 3)')} END END AS illegal
              FROM {_pairs('land_use', 'l', '', 'l.class_code, l.class_code = ANY(:farmland) AS farmland,')} x
              LEFT JOIN ap ON ap.id = x.id) y
        GROUP BY y.id, y.class_code) k
  GROUP BY k.id),
zp AS MATERIALIZED ({_zone_areas('z.' + _IDS)}),
zn AS (
  SELECT z.id, jsonb_object_agg(z.code, z.m2) FILTER (WHERE z.kind = 'plan' AND z.m2 > 0) AS by_code,
         sum(z.m2) FILTER (WHERE z.kind = 'plan' AND z.code IN ('030', '040')) AS restricted,
         sum(z.m2) FILTER (WHERE z.kind = 'urban') AS urban,
         sum(z.m2) FILTER (WHERE z.kind = 'eco') AS eco
  FROM zp z WHERE z.kind <> 'county' GROUP BY z.id),
ct AS ({_COUNTY}),
mr AS (
  SELECT DISTINCT ON (x.id) x.id, x.licence_no, x.valid_from, x.valid_to, x.m2 AS inside
  FROM {_pairs('mining_right', 'm', " AND p.kind = 'mining' AND m.right_type = 'mining'",
               'm.id AS rid, m.licence_no, m.valid_from, m.valid_to,')} x
  ORDER BY x.id, x.m2 DESC, x.valid_to DESC, x.rid),
ov AS (
  SELECT p.*,
         coalesce(ap.m2, 0) AS approval_m2,
         coalesce(sp.m2, 0) AS supply_m2,
         CASE WHEN ap.id IS NULL OR sp.cov THEN 0 WHEN sp.id IS NULL THEN ap.m2
              WHEN ap.cov THEN greatest(ap.m2 - sp.m2, 0)     -- the approved part is the whole patch
              ELSE greatest(ap.m2 - {A('ST_CollectionExtract(ST_Intersection(ap.g, sp.g), 3)')}, 0)
         END AS unsupplied_m2,
         coalesce(bf.m2, 0) AS basic_farmland_m2,
         lu.by_class, coalesce(lu.farmland, 0) AS farmland_m2, coalesce(lu.illegal, 0) AS illegal_farmland_m2,
         zn.by_code, coalesce(zn.restricted, 0) AS restricted_m2, coalesce(zn.urban, 0) AS urban_m2,
         coalesce(zn.eco, 0) AS eco_redline_m2,
         ct.by_county, ct.county, ct.city,
         mr.licence_no, mr.valid_from, mr.valid_to, coalesce(mr.inside, 0) AS own_right_m2
  FROM p
  LEFT JOIN ap ON ap.id = p.id
  LEFT JOIN sp ON sp.id = p.id
  LEFT JOIN bf ON bf.id = p.id
  LEFT JOIN lu ON lu.id = p.id
  LEFT JOIN zn ON zn.id = p.id
  LEFT JOIN ct ON ct.id = p.id
  LEFT JOIN mr ON mr.id = p.id),
flags AS (
  SELECT ov.*,
    greatest(area - approval_m2, 0) AS unapproved_m2,
    greatest(area - urban_m2, 0) AS outside_boundary_m2,
    CASE WHEN own_right_m2 >= :sliver THEN own_right_m2 ELSE 0 END AS own_m2,
    CASE WHEN own_right_m2 >= :sliver THEN licence_no END AS own_licence,
    array_remove(CASE
      WHEN kind = 'construction' AND other THEN ARRAY['other']
      WHEN kind = 'construction' THEN ARRAY[
        CASE WHEN basic_farmland_m2 >= :sliver THEN 'basic_farmland' END,
        CASE WHEN approval_m2 < :sliver THEN 'unapproved' END,
        CASE WHEN approval_m2 >= :sliver AND area - approval_m2 >= :sliver THEN 'beyond_extent' END,
        CASE WHEN approval_m2 >= :sliver AND unsupplied_m2 >= :sliver THEN 'unsupplied' END,
        CASE WHEN restricted_m2 >= :sliver OR area - urban_m2 >= :sliver OR eco_redline_m2 >= :sliver
             THEN 'outside_plan' END]
      ELSE ARRAY[
        CASE WHEN basic_farmland_m2 >= :sliver THEN 'basic_farmland' END,
        CASE WHEN own_right_m2 < :sliver THEN 'unlicensed_mining' END,
        CASE WHEN own_right_m2 >= :sliver AND area - own_right_m2 >= :sliver THEN 'beyond_boundary_mining' END,
        CASE WHEN own_right_m2 >= :sliver AND NOT detected_on BETWEEN valid_from AND valid_to
             THEN 'expired_mining' END]
    END, NULL) AS flagged
  FROM ov),
cat AS (
  SELECT flags.*, CASE WHEN flagged = '{{}}' THEN ARRAY['legal'] ELSE flagged END AS categories
  FROM flags)
INSERT INTO comparison_result AS r (
  patch_id, patch_no, batch, run_id, kind, category, categories, violation, area_m2,
  approval_m2, unapproved_m2, supply_m2, unsupplied_m2, basic_farmland_m2, farmland_m2, illegal_farmland_m2,
  restricted_m2, outside_boundary_m2, eco_redline_m2, zone_m2, land_use_m2, county_m2,
  licence_no, own_right_m2, outside_right_m2, county_code, city_code, compared_at, geom)
SELECT id, patch_no, batch, :run, kind,
       {_leading()},
       categories, categories && CAST(:violations AS text[]), area,
       approval_m2, unapproved_m2, supply_m2, unsupplied_m2, basic_farmland_m2, farmland_m2,
       CASE WHEN kind = 'construction' AND NOT other THEN illegal_farmland_m2 ELSE 0 END,
       restricted_m2, outside_boundary_m2, eco_redline_m2, coalesce(by_code, '{{}}'), coalesce(by_class, '{{}}'),
       coalesce(by_county, '{{}}'),
       own_licence, CASE WHEN kind = 'mining' THEN own_m2 END,
       CASE WHEN kind = 'mining' THEN greatest(area - own_m2, 0) END,
       coalesce(county, county_code),
       coalesce(city, (SELECT coalesce(c.code, a.code) FROM admin_division a
                       LEFT JOIN admin_division c ON c.code = a.parent_code AND c.level = 'city'
                       WHERE a.code = cat.county_code), county_code),
       now(), geom
FROM cat
ON CONFLICT (patch_id) DO UPDATE SET
  {", ".join(f"{c} = EXCLUDED.{c}" for c in (
      "patch_no", "batch", "run_id", "kind", "category", "categories", "violation", "area_m2", "approval_m2",
      "unapproved_m2", "supply_m2", "unsupplied_m2", "basic_farmland_m2", "farmland_m2", "illegal_farmland_m2",
      "restricted_m2", "outside_boundary_m2", "eco_redline_m2", "zone_m2", "land_use_m2", "county_m2",
      "licence_no", "own_right_m2", "outside_right_m2", "county_code", "city_code", "compared_at", "geom"))}
"""

# Leads: one per violating patch (source satellite), updated in place on a re-run; a lead still
# 'new' whose patch no longer violates is dismissed (a person's verdict is never overwritten).
_LEADS_SQL = f"""
WITH r AS (SELECT * FROM comparison_result WHERE run_id = :run AND patch_{_IDS}),
upd AS (
  UPDATE violation_lead v SET
    categories = r.categories, run_id = r.run_id, area_m2 = r.area_m2, farmland_m2 = r.farmland_m2,
    basic_farmland_m2 = r.basic_farmland_m2, county_code = r.county_code, geom = r.geom,
    status = CASE WHEN NOT r.violation AND v.status = 'new' THEN 'dismissed'
                  ELSE v.status END
  FROM r WHERE v.patch_id = r.patch_id AND v.source = 'satellite' AND v.lead_no = '{LEAD_PREFIX}' || r.patch_no
  RETURNING v.id),
ins AS (
  INSERT INTO violation_lead (lead_no, source, categories, patch_id, run_id, area_m2, farmland_m2,
                              basic_farmland_m2, status, found_on, county_code, geom)
  SELECT '{LEAD_PREFIX}' || r.patch_no, 'satellite', r.categories, r.patch_id, r.run_id, r.area_m2, r.farmland_m2,
         r.basic_farmland_m2, 'new', current_date, r.county_code, r.geom
  FROM r WHERE r.violation AND NOT EXISTS (
    SELECT 1 FROM violation_lead v WHERE v.lead_no = '{LEAD_PREFIX}' || r.patch_no)
  RETURNING id)
SELECT (SELECT count(*) FROM upd) AS updated, (SELECT count(*) FROM ins) AS created
"""


# --- runs -----------------------------------------------------------------------------------

def create_run(conn: Connection, batch: str, params: Parameters | None = None, requested_by: str | None = None,
               status: str = STATUS_QUEUED) -> int:
    """Record a run of `batch` (not started yet); raises ComparisonError for an unknown batch."""
    params = params or Parameters()
    total = conn.execute(text("SELECT count(*) FROM change_patch WHERE batch = :b"), {"b": batch}).scalar_one()
    if total == 0:
        raise ComparisonError(f"batch {batch!r}: no change patches with this batch name")
    return conn.execute(text(
        "INSERT INTO comparison_run (batch, parameters, status, requested_by, patches_total, patches_done, "
        "stage, timings, counts) VALUES (:b, :p, :s, :u, :t, 0, 'queued', '{}', '{}') RETURNING id"),
        {"b": batch, "p": json.dumps(asdict(params)), "s": status, "u": requested_by or _user(), "t": total}
    ).scalar_one()


def get_run(conn: Connection, run_id: int) -> dict | None:
    row = conn.execute(text(
        "SELECT id, batch, parameters, status, requested_by, started_at, finished_at, heartbeat_at, patches_total, "
        "patches_done, last_patch_id, stage, timings, counts, error FROM comparison_run WHERE id = :i"),
        {"i": run_id}).mappings().first()
    return dict(row) if row else None


def where_it_stopped(run: dict) -> str:
    """One line for a person: how far an unfinished run got."""
    return (f"run {run['id']} of batch {run['batch']!r} stopped in stage {run['stage'] or 'queued'} after "
            f"{run['patches_done']:,} of {run['patches_total']:,} patches"
            + (f" (last patch id {run['last_patch_id']})" if run["last_patch_id"] else "")
            + (f" (county partitions not finished: {', '.join(pending)})"
               if (pending := (run.get("counts") or {}).get("partitions_pending")) else "")
            + (f": {run['error']}" if run.get("error") else ""))


def run_comparison(engine: Engine, batch: str, params: Parameters | None = None, requested_by: str | None = None,
                   resume: bool = True, run_id: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Compare every patch of `batch`, committing chunk by chunk (resumable).

    With `resume` (the default) an unfinished earlier run of the batch (interrupted or failed)
    is continued after its last committed chunk; otherwise, or when there is none, a new run
    starts (or the queued run `run_id`). Raises ComparisonError when another process is
    comparing the batch, or for an unknown batch.
    """
    with engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(hashtext('onemap.comparison'), hashtext(:b))"),
                            {"b": batch}).scalar_one():
            conn.rollback()
            raise ComparisonError(f"batch {batch!r} is being compared by another run right now")
        try:
            # nobody else holds the batch: a run still marked running died with its process
            conn.execute(text("UPDATE comparison_run SET status = :i WHERE batch = :b AND status = :r"),
                         {"i": STATUS_INTERRUPTED, "b": batch, "r": STATUS_RUNNING})
            earlier = None
            if resume and run_id is None:
                earlier = conn.execute(text(
                    "SELECT id FROM comparison_run WHERE batch = :b AND status IN (:i, :f) ORDER BY id DESC LIMIT 1"),
                    {"b": batch, "i": STATUS_INTERRUPTED, "f": STATUS_FAILED}).scalar()
            if earlier is not None:
                run_id = earlier
            elif run_id is None:
                run_id = create_run(conn, batch, params, requested_by)
            conn.commit()
            return _Runner(conn, run_id, commit=True, progress=progress, engine=engine).run()
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('onemap.comparison'), hashtext(:b))"), {"b": batch})
            conn.commit()


def start_in_background(engine: Engine, batch: str, params: Parameters | None = None,
                        requested_by: str | None = None) -> int:
    """Record a queued run of `batch` and run it in a background thread; returns the run id to poll.

    Raises ComparisonError for an unknown batch. A run that cannot start (the batch is being
    compared by another run) ends as `failed` with the reason in `error`."""
    with engine.begin() as conn:
        run_id = create_run(conn, batch, params, requested_by)

    def job() -> None:
        try:
            run_comparison(engine, batch, resume=False, run_id=run_id)
        except ComparisonError as exc:
            with engine.begin() as conn:
                conn.execute(text("UPDATE comparison_run SET status = :f, error = :e, finished_at = now() "
                                  "WHERE id = :i AND status = :q"),
                             {"f": STATUS_FAILED, "e": str(exc), "i": run_id, "q": STATUS_QUEUED})
        except Exception:      # the runner recorded it on the run; the log keeps the traceback
            log.exception("comparison run %s of batch %r failed", run_id, batch)

    threading.Thread(target=job, name=f"comparison-run-{run_id}", daemon=True).start()
    return run_id


def run_in_transaction(conn: Connection, batch: str, params: Parameters | None = None,
                       requested_by: str | None = None) -> RunResult:
    """Compare `batch` inside the caller's transaction (the demo load, tests): no intermediate commits."""
    run_id = create_run(conn, batch, params, requested_by)
    return _Runner(conn, run_id, commit=False).run()


class _Runner:
    def __init__(self, conn: Connection, run_id: int, commit: bool, progress=None, engine: Engine | None = None):
        self.conn, self.run_id, self.commit, self.engine = conn, run_id, commit, engine
        self.progress = progress or (lambda done, total: None)
        run = get_run(conn, run_id)
        if run is None:
            raise ComparisonError(f"no comparison run {run_id}")
        if run["status"] == STATUS_FINISHED:
            raise ComparisonError(f"comparison run {run_id} has already finished")
        self.run_row = run
        self.params = Parameters.from_dict(run["parameters"])
        self.timings = dict(run["timings"] or {})
        self.counts = dict(run["counts"] or {})

    def _sql(self, sql: str, **params):
        return self.conn.execute(text(sql), params)

    def _checkpoint(self) -> None:
        if self.commit:
            self.conn.commit()

    def _set(self, **values) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in values)
        values = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in values.items()}
        self._sql(f"UPDATE comparison_run SET {sets}, heartbeat_at = now() WHERE id = :run_id",
                  run_id=self.run_id, **values)

    def _time(self, stage: str, seconds: float) -> None:
        self.timings[f"{stage}_s"] = round(self.timings.get(f"{stage}_s", 0.0) + seconds, 3)

    def run(self) -> RunResult:
        run, batch = self.run_row, self.run_row["batch"]
        resumed_from = run["last_patch_id"]
        started = time.perf_counter()
        self._set(status=STATUS_RUNNING, stage="prepare", error=None)
        self._checkpoint()
        try:
            t = time.perf_counter()
            for (name,) in self._sql(     # work tables of earlier runs of the batch whose process was killed
                    "SELECT t.tablename FROM pg_tables t JOIN comparison_run r ON t.tablename = 'cmp_zone_m2_r' || r.id "
                    "WHERE t.schemaname = current_schema() AND r.batch = :b AND r.id <> :i",
                    b=batch, i=self.run_id).all():
                self._sql(f'DROP TABLE IF EXISTS "{name}"')
            self._prepare(batch)
            self._time("prepare", time.perf_counter() - t)
            total = self._sql("SELECT count(*) FROM change_patch WHERE batch = :b", b=batch).scalar_one()
            ids = [r[0] for r in self._sql(_TODO_SQL, b=batch, run=self.run_id)]
            done = 0 if self.params.engine == "dask" else total - len(ids)
            self._set(stage="compare", patches_total=total, patches_done=done)
            self._checkpoint()
            self.progress(done, total)
            size = self.params.chunk_size
            chunks = [ids[k:k + size] for k in range(0, len(ids), size)]
            if self.params.engine == "dask":
                done = self._by_county(batch, done, total)
            elif self.engine is not None and self.params.workers > 1 and len(chunks) > 1:
                done = self._in_parallel(batch, chunks, done, total)
            else:
                for chunk in chunks:
                    self._account(self._chunk(self.conn, batch, chunk))
                    done += len(chunk)
                    self._set(patches_done=done, last_patch_id=chunk[-1], timings=self.timings, counts=self.counts)
                    self._checkpoint()
                    self.progress(done, total)
            t = time.perf_counter()
            self.counts.update(self._final_counts(batch))
            self._time("count", time.perf_counter() - t)
            self._time("total", time.perf_counter() - started)
            self._sql(_for_run(_CLEANUP, self.run_id))
            self._set(status=STATUS_FINISHED, stage="finished", timings=self.timings, counts=self.counts)
            self._sql("UPDATE comparison_run SET finished_at = now() WHERE id = :i", i=self.run_id)
            self._checkpoint()
        except BaseException as exc:
            if not self.commit:
                raise
            self.conn.rollback()
            self._sql(_for_run(_CLEANUP, self.run_id))
            status = STATUS_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else STATUS_FAILED
            self._set(status=status, error=f"{type(exc).__name__}: {exc}"[:2000])
            self.conn.commit()
            raise
        return RunResult(self.run_id, batch, STATUS_FINISHED, total, done, resumed_from, self.counts, self.timings)

    def _prepare(self, batch: str) -> None:
        """The run's zone areas (_ZONE_M2) of the batch's patches, from the zone pieces (cut again
        first if the zones changed): counties and zones on two connections at once when the run
        has workers, else on the run's own connection."""
        params = dict(batch=batch)
        zone_pieces(self.conn, self.params.subdivide_vertices)
        for statement in _PREPARE:
            self._sql(_for_run(statement, self.run_id), **params)
        if self.engine is not None and self.commit and self.params.workers > 1:
            self._checkpoint()                  # the table, for the other connections

            def fill(counties: bool) -> None:
                with self.engine.begin() as conn:
                    conn.execute(text(_for_run(_ZONE_M2, self.run_id)), dict(params, counties=counties))
            with ThreadPoolExecutor(2, thread_name_prefix=f"comparison-{self.run_id}-zones") as pool:
                list(pool.map(fill, (True, False)))
        else:
            self._sql(_for_run(_ZONE_M2, self.run_id), counties=None, **params)
        for statement in _PREPARED:
            self._sql(_for_run(statement, self.run_id))

    def _chunk(self, conn: Connection, batch: str, ids: list[int]) -> dict:
        """Compare the patches `ids` and upsert their leads (not committed)."""
        t = time.perf_counter()
        conn.execute(text(_for_run(_COMPARE_SQL, self.run_id)), dict(batch=batch, ids=ids, run=self.run_id,
                                              sliver=self.params.sliver_m2, farmland=sorted(FARMLAND_CLASSES),
                                              violations=sorted(VIOLATIONS)))
        compared = time.perf_counter()
        updated, created = conn.execute(text(_LEADS_SQL), dict(run=self.run_id, ids=ids)).one()
        return {"compare": compared - t, "leads": time.perf_counter() - compared, "created": created,
                "updated": updated}

    def _account(self, stats: dict) -> None:
        self._time("compare", stats["compare"])
        self._time("leads", stats["leads"])
        self.counts["leads_created"] = self.counts.get("leads_created", 0) + stats["created"]
        self.counts["leads_updated"] = self.counts.get("leads_updated", 0) + stats["updated"]

    def _in_parallel(self, batch: str, chunks: list[list[int]], done: int, total: int) -> int:
        """Compare the chunks on `workers` connections at once (each prepares its own reference
        tables and commits its chunks). The run records the contiguous prefix of finished chunks,
        so a resumed run never skips a chunk (one finished beyond the prefix is compared again)."""
        pending: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(len(chunks)):
            pending.put(i)
        finished: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()

        def worker() -> None:
            with self.engine.connect() as conn:
                while not stop.is_set():
                    try:
                        i = pending.get_nowait()
                    except queue.Empty:
                        return
                    stats = self._chunk(conn, batch, chunks[i])
                    conn.commit()
                    finished.put((i, stats))

        pool = ThreadPoolExecutor(self.params.workers, thread_name_prefix=f"comparison-{self.run_id}")
        futures = [pool.submit(worker) for _ in range(self.params.workers)]
        ended: set[int] = set()
        prefix, base, all_done = 0, done, done
        try:
            while len(ended) < len(chunks):
                try:
                    i, stats = finished.get(timeout=0.5)
                except queue.Empty:
                    if all(f.done() for f in futures) and finished.empty():
                        for f in futures:
                            f.result()          # a worker's error is raised here
                        raise ComparisonError(f"run {self.run_id}: the workers stopped with chunks left")
                    continue
                ended.add(i)
                self._account(stats)
                all_done += len(chunks[i])
                while prefix in ended:
                    prefix += 1
                if prefix:
                    self._set(patches_done=base + sum(len(c) for c in chunks[:prefix]),
                              last_patch_id=chunks[prefix - 1][-1], timings=self.timings, counts=self.counts)
                self._checkpoint()
                self.progress(all_done, total)
        finally:
            stop.set()
            pool.shutdown(wait=True)
        return all_done

    def _by_county(self, batch: str, done: int, total: int) -> int:
        """Compare the batch's patches partitioned by county, one task per county on a Dask
        distributed LocalCluster of `workers` processes; each task runs `compare_partition` (this
        module's SQL) on its worker's own connection and commits its results and leads. The run
        records every finished partition (patches, timings, worker) and the ones still pending; a
        resumed run compares only the partitions not finished."""
        if self.engine is None or not self.commit:
            raise ComparisonError("the dask engine needs a committed run (its workers have their own connections)")
        from dask.distributed import Client, LocalCluster, as_completed
        t = time.perf_counter()
        parts = {str(county): ids for county, ids in self._sql(_for_run(_PARTITION_SQL, self.run_id), batch=batch)}
        self._time("partition", time.perf_counter() - t)
        url = self.engine.url.render_as_string(hide_password=False)
        partitions = self.timings.setdefault("partitions", {})     # finished ones: a resumed run skips them
        done += sum(p["patches"] for p in partitions.values())
        pending = {c: ids for c, ids in parts.items() if c not in partitions}
        self.counts.update(partitions_total=len(parts), partitions_pending=sorted(pending))
        self._set(patches_done=done, timings=self.timings, counts=self.counts)
        self._checkpoint()
        self.progress(done, total)
        with LocalCluster(n_workers=self.params.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            futures = [client.submit(compare_partition, url, self.run_id, batch, ids, key=f"run{self.run_id}-county-{c}")
                       for c, ids in pending.items()]
            for future in as_completed(futures):
                stats = future.result()            # a partition's error is raised here; the run records it
                county = future.key.rsplit("-", 1)[1]
                self._account(stats)
                done += stats["patches"]
                partitions[county] = {"patches": stats["patches"], "compare_s": round(stats["compare"], 3),
                                      "leads_s": round(stats["leads"], 3), "total_s": round(stats["total"], 3),
                                      "worker": stats["worker"]}
                self.counts["partitions_pending"].remove(county)
                self._set(patches_done=done, timings=self.timings, counts=self.counts)
                self._checkpoint()
                self.progress(done, total)
        return done

    def _final_counts(self, batch: str) -> dict:
        row = self._sql("""SELECT count(*) AS patches, count(*) FILTER (WHERE violation) AS violations
                           FROM comparison_result WHERE batch = :b""", b=batch).mappings().one()
        per = dict(self._sql("""SELECT c, count(*) FROM comparison_result, unnest(categories) c
                                WHERE batch = :b GROUP BY c""", b=batch).all())
        return {"patches": row["patches"], "violations": row["violations"],
                "categories": {c: per.get(c, 0) for c in SEVERITY}}


_WORKER_ENGINES: dict[str, Engine] = {}


def compare_partition(url: str, run_id: int, batch: str, ids: list[int]) -> dict:
    """A Dask task: compare the patches `ids` (one county) of run `run_id` on this worker's own
    connection, in chunks of the run's chunk_size, each committed; returns the partition's stats."""
    started = time.perf_counter()
    engine = _WORKER_ENGINES.get(url) or _WORKER_ENGINES.setdefault(url, create_engine(url, pool_size=1))
    with engine.connect() as conn:
        runner = _Runner(conn, run_id, commit=True)
        stats = {"patches": len(ids), "compare": 0.0, "leads": 0.0, "created": 0, "updated": 0}
        size = runner.params.chunk_size
        for k in range(0, len(ids), size):
            chunk = ids[k:k + size]
            one = runner._chunk(conn, batch, chunk)
            conn.commit()
            for key in ("compare", "leads", "created", "updated"):
                stats[key] += one[key]
    from dask.distributed import get_worker
    return {**stats, "total": time.perf_counter() - started, "worker": get_worker().address}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
