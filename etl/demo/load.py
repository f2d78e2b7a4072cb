"""Loading the generated province into PostGIS in one transaction.

Everything bulky goes in with COPY (EWKB hex through psycopg2's `copy_expert` on the
transaction's own DBAPI connection); clipping, cutting and every area are set-based SQL.
Staging tables live in a private schema created and dropped inside the transaction (not
TEMP tables: PostgreSQL never scans temporary tables in parallel, and the land-use clip
is worth both cores). With `wal_level = minimal` tables truncated in the same transaction
are loaded without WAL.
"""
from __future__ import annotations

import io
import os
import time
from datetime import date, datetime
from typing import Callable, Iterable, Sequence

import numpy as np
import shapely
from sqlalchemy import Connection

from etl.demo.grid import GRID_SIZE, snap
from layers import REGISTRY
from layers.codes import LAND_USE_CLASS
from layers.registry import STORAGE_SRID
from services.areas import area_sql

STAGE = "demo_stage"
GRID = GRID_SIZE        # snap-rounding grid of every land-use overlay (degrees)
# Debugging aids: ONEMAP_DEMO_TIMING=1 reports each statement's time through `progress`;
# ONEMAP_DEMO_KEEP_STAGE=1 keeps the staging schema after the load.
TIMING = bool(os.environ.get("ONEMAP_DEMO_TIMING"))
TILE_DEG = 0.2          # tiles that cut the counties and strips into pieces
FARMLAND_SQL = "('0101', '0102', '0103')"
SURVEY_DATE = date(2025, 12, 31)
BASIC_FARMLAND_DESIGNATED = date(2022, 9, 30)


def ewkb(geoms) -> np.ndarray:
    """Hex EWKB (SRID 4490) of a geometry array."""
    arr = np.asarray(geoms, dtype=object)
    return shapely.to_wkb(shapely.set_srid(arr, STORAGE_SRID), hex=True, include_srid=True)


def _text(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(f'"{v}"' for v in value) + "}"
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    s = str(value)
    if any(ch in s for ch in "\\\t\n\r"):
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def simple_cells(grid, counties, strips) -> list[str]:
    """The county of every cell that lies inside one county and one tile and touches no road or
    river strip (such a cell is a parcel as it is); '' for the cells that need clipping.

    Decided in Python with prepared geometries, so PostGIS only overlays the other cells."""
    tree = shapely.STRtree(grid.polygons)
    county = np.full(len(grid), "", dtype=object)
    for region in counties:
        shapely.prepare(region.geom)
        county[tree.query(region.geom, predicate="contains_properly")] = region.code
    bounds = shapely.bounds(grid.polygons)
    margin = 1e-7
    one_tile = ((np.floor((bounds[:, 0] - margin) / TILE_DEG) == np.floor((bounds[:, 2] + margin) / TILE_DEG))
                & (np.floor((bounds[:, 1] - margin) / TILE_DEG) == np.floor((bounds[:, 3] + margin) / TILE_DEG)))
    county[~one_tile] = ""
    touched = tree.query(np.asarray(strips, dtype=object), predicate="dwithin", distance=margin)[1]
    county[touched] = ""
    return county.tolist()


class Loader:
    """SQL and COPY on the one connection of the load's transaction."""

    def __init__(self, conn: Connection, say: Callable[[str], None]):
        self.conn = conn
        self.raw = conn.connection.driver_connection
        self.cur = self.raw.cursor()
        self.say = say

    def sql(self, statement: str, params: dict | Sequence | None = None) -> int:
        started = time.perf_counter()
        self.cur.execute(statement, params)
        if TIMING:
            self.say(f"  {time.perf_counter() - started:7.2f} s  {' '.join(statement.split())[:100]}")
        return self.cur.rowcount

    def rows(self, statement: str, params=None) -> list[tuple]:
        self.sql(statement, params)
        return self.cur.fetchall()

    def copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
        """COPY rows (Python values; geometries already as EWKB hex strings) into `table`."""
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join(_text(v) for v in row))
            buf.write("\n")
        buf.seek(0)
        self.cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)

    def copy_text(self, table: str, columns: Sequence[str], text: str) -> None:
        self.cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", io.StringIO(text))

    # --- set-up and tear-down --------------------------------------------------------------
    def begin(self) -> None:
        self.sql("SET LOCAL work_mem = '256MB'")
        self.sql("SET LOCAL maintenance_work_mem = '1GB'")
        # the overlays are CPU-bound: let PostgreSQL use a worker beside the leader readily
        self.sql("SET LOCAL parallel_setup_cost = 100")
        self.sql("SET LOCAL parallel_tuple_cost = 0.001")
        tables = [layer.table for layer in REGISTRY] + [link.name for link in REGISTRY.links] + [
            "supervision_number", "supervision_counter", "comparison_run"]
        self.sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        self.sql(f"DROP SCHEMA IF EXISTS {STAGE} CASCADE")
        self.sql(f"CREATE SCHEMA {STAGE}")

    def finish(self) -> None:
        if not os.environ.get("ONEMAP_DEMO_KEEP_STAGE"):
            self.sql(f"DROP SCHEMA {STAGE} CASCADE")
        for layer in REGISTRY:
            self.sql(f"ANALYZE {layer.table}")
        for name in [link.name for link in REGISTRY.links] + ["supervision_number", "supervision_counter"]:
            self.sql(f"ANALYZE {name}")

    # --- administrative divisions -----------------------------------------------------------
    def admin(self, regions) -> None:
        order = {"province": 0, "city": 1, "county": 2}
        regions = sorted(regions, key=lambda r: (order[r.level], r.code))
        wkb = ewkb([r.geom for r in regions])
        self.copy("admin_division", ["code", "name", "level", "parent_code", "seat_lon", "seat_lat", "geom"],
                  [(r.code, r.name, r.level, r.parent_code, r.seat[0], r.seat[1], g) for r, g in zip(regions, wkb)])
        self.sql(f"UPDATE admin_division SET area_m2 = {area_sql('geom')}")
        # County pieces: each county cut by a grid of tiles whose corners lie on the snapping
        # grid. Tile lines and county borders are shared by both sides, so neighbouring pieces
        # get identical nodes (ST_Subdivide would cut each county along lines of its own).
        x0, y0, x1, y1 = next(r.geom.bounds for r in regions if r.level == "province")
        tiles = []
        for i, tx in enumerate(np.arange(np.floor(x0 / TILE_DEG), np.ceil(x1 / TILE_DEG)) * TILE_DEG):
            for j, ty in enumerate(np.arange(np.floor(y0 / TILE_DEG), np.ceil(y1 / TILE_DEG)) * TILE_DEG):
                bx = snap(np.array([tx, tx + TILE_DEG]))
                by = snap(np.array([ty, ty + TILE_DEG]))
                tiles.append((i, j, shapely.box(bx[0], by[0], bx[1], by[1])))
        self.sql(f"CREATE TABLE {STAGE}.tile (i int, j int, geom geometry(Polygon, {STORAGE_SRID}))")
        self.copy(f"{STAGE}.tile", ["i", "j", "geom"],
                  [(i, j, g) for (i, j, _), g in zip(tiles, ewkb([t for _, _, t in tiles]))])
        self.sql(f"CREATE INDEX ON {STAGE}.tile USING gist (geom)")
        self.sql(f"""CREATE TABLE {STAGE}.county_piece AS
                     SELECT code, i, j, geom FROM (
                       SELECT a.code, t.i, t.j, ST_CollectionExtract(ST_Intersection(a.geom, t.geom, {GRID}), 3) AS geom
                       FROM admin_division a JOIN {STAGE}.tile t ON ST_Intersects(a.geom, t.geom)
                       WHERE a.level = 'county') p
                     WHERE NOT ST_IsEmpty(geom)""")
        self.sql(f"CREATE INDEX ON {STAGE}.county_piece USING gist (geom)")
        self.sql(f"ANALYZE {STAGE}.county_piece")

    # --- land use ---------------------------------------------------------------------------
    def land_use(self, grid, cells, counties, roads, rivers) -> None:
        t = time.perf_counter()
        simple = simple_cells(grid, counties, list(roads) + list(rivers))
        codes = cells.codes().tolist()
        wkb = ewkb(grid.polygons).tolist()
        state, basic, grade = cells.state.tolist(), cells.basic.tolist(), cells.grade.tolist()
        cx, cy = grid.cx.tolist(), grid.cy.tolist()
        lines = [f"{i}\t{codes[i]}\t{'t' if state[i] else 'f'}\t{'t' if basic[i] else 'f'}\t"
                 f"{grade[i]}\t{cx[i]!r}\t{cy[i]!r}\t{simple[i] or chr(92) + 'N'}\t{wkb[i]}\n"
                 for i in range(len(codes))]
        self.sql(f"""CREATE TABLE {STAGE}.cell (cell_id int PRIMARY KEY, cls text, state bool, basic bool,
                     grade int, cx float8, cy float8, county text, geom geometry(Polygon, {STORAGE_SRID}))""")
        self.copy_text(f"{STAGE}.cell", ["cell_id", "cls", "state", "basic", "grade", "cx", "cy", "county", "geom"],
                       "".join(lines))
        self.sql(f"CREATE INDEX ON {STAGE}.cell USING gist (geom) WHERE county IS NULL")
        self.sql(f"ANALYZE {STAGE}.cell")
        self.say(f"demo: {len(grid):,} cells copied, {sum(1 for c in simple if not c):,} to clip "
                 f"({time.perf_counter() - t:.1f} s)")

        # Road and river strips (roads over rivers: bridges), noded against each other.
        strips = [("road", g) for g in roads] + [("river", g) for g in rivers]
        self.sql(f"CREATE TABLE {STAGE}.strip (id int, kind text, geom geometry(Geometry, {STORAGE_SRID}))")
        self.copy(f"{STAGE}.strip", ["id", "kind", "geom"],
                  [(i, kind, g) for i, ((kind, _), g) in enumerate(zip(strips, ewkb([g for _, g in strips])))])
        self.sql(f"""CREATE TABLE {STAGE}.strip_tile AS
            WITH road AS (SELECT ST_UnaryUnion(ST_Collect(geom ORDER BY id), {GRID}) AS g
                          FROM {STAGE}.strip WHERE kind = 'road'),
                 river AS (SELECT ST_UnaryUnion(ST_Collect(geom ORDER BY id), {GRID}) AS g
                           FROM {STAGE}.strip WHERE kind = 'river'),
                 strips AS (SELECT ST_Union(road.g, river.g, {GRID}) AS g FROM road, river),
                 river_only AS (SELECT ST_Difference(river.g, road.g, {GRID}) AS g FROM road, river),
                 road_noded AS (SELECT ST_Difference(strips.g, river_only.g, {GRID}) AS g FROM strips, river_only),
                 kinds AS (SELECT 0 AS part, g FROM strips UNION ALL SELECT 1, g FROM road_noded
                           UNION ALL SELECT 2, g FROM river_only)
            SELECT t.i, t.j, part, ST_CollectionExtract(ST_Intersection(g, t.geom, {GRID}), 3) AS geom
            FROM kinds JOIN {STAGE}.tile t ON ST_Intersects(g, t.geom)""")
        self.sql(f"DELETE FROM {STAGE}.strip_tile WHERE ST_IsEmpty(geom)")
        self.sql(f"CREATE INDEX ON {STAGE}.strip_tile (i, j, part)")

        # Regions: a partition of the province into county × tile × {rest 0, road 1, river 2}.
        # Every parcel is a cell intersected with regions, so both sides of every shared edge
        # come from the same region boundaries and the same snap-rounding (no overlay ever
        # takes another parcel's output as input).
        self.sql(f"""CREATE TABLE {STAGE}.region AS
            SELECT row_number() OVER (ORDER BY code, i, j, part) AS id, code, part, geom FROM (
              SELECT p.code, p.i, p.j, 0 AS part,
                     CASE WHEN s.geom IS NULL THEN p.geom
                          ELSE ST_CollectionExtract(ST_Difference(p.geom, s.geom, {GRID}), 3) END AS geom
              FROM {STAGE}.county_piece p
              LEFT JOIN {STAGE}.strip_tile s ON s.i = p.i AND s.j = p.j AND s.part = 0
              UNION ALL
              SELECT p.code, p.i, p.j, s.part, ST_CollectionExtract(ST_Intersection(p.geom, s.geom, {GRID}), 3)
              FROM {STAGE}.county_piece p
              JOIN {STAGE}.strip_tile s ON s.i = p.i AND s.j = p.j AND s.part > 0 AND ST_Intersects(p.geom, s.geom)
            ) r WHERE NOT ST_IsEmpty(geom)""")
        self.sql(f"CREATE INDEX ON {STAGE}.region USING gist (geom)")
        self.sql(f"ANALYZE {STAGE}.region")

        # Cells inside one county tile and clear of every strip are parcels as they are; the
        # others are intersected with every region they touch, and the fragments of one cell in
        # one county and of one kind are merged again.
        self.sql(f"""CREATE TABLE {STAGE}.fragment AS
            SELECT c.cell_id, r.part, r.code, r.id,
                   ST_CollectionExtract(ST_Intersection(c.geom, r.geom, {GRID}), 3) AS g
            FROM {STAGE}.cell c JOIN {STAGE}.region r ON ST_Intersects(c.geom, r.geom)
            WHERE c.county IS NULL""")
        self.sql(f"""CREATE TABLE {STAGE}.parcel AS
            SELECT cell_id, 0 AS part, county, ST_Multi(geom) AS geom FROM {STAGE}.cell WHERE county IS NOT NULL
            UNION ALL
            SELECT cell_id, part, code, ST_Multi(g) FROM (
              SELECT cell_id, part, code, min(id) AS id, count(*) AS n FROM {STAGE}.fragment GROUP BY 1, 2, 3) k
            JOIN {STAGE}.fragment f USING (cell_id, part, code, id) WHERE n = 1
            UNION ALL
            SELECT cell_id, part, code,
                   ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(g ORDER BY id), {GRID}), 3))
            FROM {STAGE}.fragment GROUP BY cell_id, part, code HAVING count(*) > 1""")
        self.sql(f"DELETE FROM {STAGE}.parcel WHERE ST_IsEmpty(geom) OR ST_Area(geom) < 1e-12")
        self.say(f"demo: parcels cut and clipped ({time.perf_counter() - t:.1f} s)")

        names = [(code, zh) for code, (zh, _) in LAND_USE_CLASS.codes.items()]
        self.sql(f"CREATE TABLE {STAGE}.class_name (code text PRIMARY KEY, name text)")
        self.copy(f"{STAGE}.class_name", ["code", "name"], names)
        # serials per county; township (3 digits) and village (3 digits) from the cell centre
        self.sql(f"""CREATE TABLE {STAGE}.parcel_attr AS
            SELECT p.cell_id, p.part, p.county,
                   row_number() OVER (PARTITION BY p.county ORDER BY p.cell_id, p.part) AS serial,
                   CASE p.part WHEN 1 THEN '1003' WHEN 2 THEN '1101' ELSE c.cls END AS cls,
                   (p.part > 0 OR c.state) AS state, c.basic AND p.part = 0 AS basic, c.grade,
                   100 + dense_rank() OVER (PARTITION BY p.county ORDER BY floor(c.cx / 0.2), floor(c.cy / 0.15)) AS town,
                   200 + dense_rank() OVER (PARTITION BY p.county, floor(c.cx / 0.2), floor(c.cy / 0.15)
                                            ORDER BY floor(c.cx / 0.05), floor(c.cy / 0.0375)) AS village,
                   p.geom, {area_sql('p.geom')} AS area_m2
            FROM {STAGE}.parcel p JOIN {STAGE}.cell c USING (cell_id)""")
        self.sql(f"""INSERT INTO land_use (bsm, parcel_no, class_code, class_name, owner_code, owner_kind,
                                           located_code, county_code, area_m2, survey_date, geom)
            SELECT a.county || lpad(a.serial::text, 10, '0'), a.county || '-' || lpad(a.serial::text, 6, '0'),
                   a.cls, n.name,
                   a.county || a.town || CASE WHEN a.state THEN '000' ELSE a.village::text END,
                   CASE WHEN a.state THEN 'state' ELSE 'collective' END,
                   a.county || a.town || a.village, a.county, a.area_m2, %(survey)s, a.geom
            FROM {STAGE}.parcel_attr a JOIN {STAGE}.class_name n ON n.code = a.cls
            ORDER BY a.county, a.serial""", {"survey": SURVEY_DATE})
        self.sql(f"""INSERT INTO basic_farmland (patch_no, class_code, grade, county_code, area_m2, designated_on, geom)
            SELECT county || '-JB' || lpad(row_number() OVER (PARTITION BY county ORDER BY serial)::text, 6, '0'),
                   cls, grade::text, county, area_m2, %(designated)s, geom
            FROM {STAGE}.parcel_attr WHERE basic AND cls IN {FARMLAND_SQL}
            ORDER BY county, serial""", {"designated": BASIC_FARMLAND_DESIGNATED})
        self.say(f"demo: land_use and basic_farmland inserted ({time.perf_counter() - t:.1f} s)")

    # --- zones clipped to counties ------------------------------------------------------------
    def clip_sources(self, name: str, geoms: Sequence) -> list[tuple[int, str, str]]:
        """Clip source polygons to the counties; returns (source index, county, EWKB hex) rows,
        in source then county order."""
        self.sql(f"CREATE TABLE {STAGE}.{name}_src (src int, geom geometry(Geometry, {STORAGE_SRID}))")
        self.copy(f"{STAGE}.{name}_src", ["src", "geom"], enumerate(ewkb(list(geoms))))
        self.sql(f"""CREATE TABLE {STAGE}.{name}_piece AS
            SELECT s.src, p.k, p.geom FROM {STAGE}.{name}_src s,
                   LATERAL ST_Subdivide(s.geom, 256) WITH ORDINALITY AS p(geom, k)""")
        self.sql(f"CREATE INDEX ON {STAGE}.{name}_piece USING gist (geom)")
        self.sql(f"ANALYZE {STAGE}.{name}_piece")
        return self.rows(f"""
            SELECT src, county, geom::text FROM (
              SELECT src, code AS county,
                     ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(g ORDER BY k, ci, cj), {GRID}), 3)) AS geom
              FROM (SELECT p.src, p.k, c.code, c.i AS ci, c.j AS cj,
                           ST_CollectionExtract(ST_Intersection(p.geom, c.geom, {GRID}), 3) AS g
                    FROM {STAGE}.{name}_piece p JOIN {STAGE}.county_piece c ON ST_Intersects(p.geom, c.geom)) f
              GROUP BY src, code) u
            WHERE NOT ST_IsEmpty(geom) AND ST_Area(geom) > 1e-10
            ORDER BY src, county""")

    def rest_of_counties(self, taken) -> list[tuple[str, str]]:
        """(county, EWKB hex) of each county piece minus `taken`, in county and tile order."""
        self.sql(f"CREATE TABLE {STAGE}.taken (geom geometry(Geometry, {STORAGE_SRID}))")
        self.copy(f"{STAGE}.taken", ["geom"], [(ewkb([taken])[0],)])
        return self.rows(f"""
            SELECT code, geom::text FROM (
              SELECT p.code, p.i, p.j,
                     ST_Multi(CASE WHEN ST_Intersects(p.geom, t.geom)
                                   THEN ST_CollectionExtract(ST_Difference(p.geom, t.geom, {GRID}), 3)
                                   ELSE p.geom END) AS geom
              FROM {STAGE}.county_piece p, {STAGE}.taken t) r
            WHERE NOT ST_IsEmpty(geom) AND ST_Area(geom) > 1e-10
            ORDER BY code, i, j""")

    def set_areas(self, table: str) -> None:
        self.sql(f"UPDATE {table} SET area_m2 = {area_sql('geom')}")

    def overlay_area(self, table: str, column: str, other: str, where: str = "TRUE") -> None:
        """table.column = ellipsoidal area of the overlap with `other` rows matching `where`."""
        self.sql(f"UPDATE {table} SET {column} = 0")
        self.sql(f"""UPDATE {table} t SET {column} = x.m2 FROM (
                       SELECT t.id, sum({area_sql('ST_Intersection(t.geom, o.geom)')}) AS m2
                       FROM {table} t JOIN {other} o ON ST_Intersects(t.geom, o.geom) AND {where}
                       GROUP BY t.id) x
                     WHERE x.id = t.id""")

    def ids(self, table: str, key: str) -> dict[str, int]:
        return {k: i for i, k in self.rows(f"SELECT id, {key} FROM {table}")}
