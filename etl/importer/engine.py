"""One import: read → map → check coordinates and CRS → stage (COPY) → validate in SQL →
insert in one statement → record the batch. All inside a savepoint: a rejected batch, or a
dry run, leaves the database as it was.
"""
from __future__ import annotations

import getpass
import tempfile
from contextlib import contextmanager, nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg2.extras import Json
from pyproj import Transformer
from sqlalchemy import Connection, text

from etl import corners
from etl.importer import mapping, readers, safety, stage
from etl.importer.crs import resolve
from etl.importer.errors import BatchRejected, CrsProblem, ImportFailed, ReadFailed, UnsafeInput
from etl.importer.safety import Limits
from layers import REGISTRY
from layers.registry import STORAGE_SRID, FieldType, Layer
from services.areas import area_sql
from services.compliance import RANK, check_and_record, colour_counts
from services.supervision import issue_many
from tiles import changes

MAX_ABS_COORD = 1e8          # no CGCS2000 coordinate (degrees or GK metres) is larger
SUPERVISION_KIND = {"approval": "P", "supply": "G", "consolidation_project": "B",
                    "enforcement_case": "C", "mining_right": "K"}


@dataclass
class ImportResult:
    layer: str
    file_name: str
    sha256: str
    status: str                    # "imported", "unchanged", "dry-run"
    batch_id: int | None = None
    rows_read: int = 0
    rows_inserted: int = 0
    source_crs: int | None = None
    report: list[dict] = field(default_factory=list)
    # approvals: the compliance check of the rows the batch inserted (services/compliance.py);
    # stored with the batch, or only reported by a dry run
    compliance: list[dict] | None = None

    @property
    def warnings(self) -> list[dict]:
        return [r for r in self.report if r["severity"] == "warning"]

    def compliance_summary(self) -> dict | None:
        """Counts per colour and the red and yellow approvals with their reasons (None: no check)."""
        if self.compliance is None:
            return None
        flagged = [{k: a[k] for k in ("document_no", "supervision_no", "county_code", "colour", "reasons")}
                   for a in sorted(self.compliance, key=lambda a: (-RANK[a["colour"]], a["document_no"]))
                   if a["colour"] != "green"]
        return {"counts": colour_counts(self.compliance), "flagged": flagged}


def _entry(severity: str, problem: str, row: int | None = None, field_: str | None = None) -> dict:
    return {"severity": severity, "row": row, "field": field_, "problem": problem}


def import_file(conn: Connection, layer_name: str, path: Path | str, *, county: str | None = None,
                crs: int | None = None, dry_run: bool = False, user: str | None = None,
                limits: Limits = Limits(), display_name: str | None = None, sheet: str | None = None,
                progress: Callable[[str], None] = lambda msg: None) -> ImportResult:
    """Import `path` into layer `layer_name` on `conn` (the caller commits); `sheet` picks a
    spreadsheet's sheet.

    Raises an ImportFailed subclass (BatchRejected carries the report) with nothing written."""
    layer = REGISTRY[layer_name]
    path = Path(path)
    name = display_name or path.name
    if not path.exists():
        raise ReadFailed(f"{name}: no such file")
    members = _submitted_files(path)
    for p in members:
        safety.check_size(p, limits)
    sha = safety.sha256_of(members)
    # two imports of the same file into the same layer wait for each other (then one is "unchanged")
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), dict(key=f"{layer.name}:{sha}"))
    done = conn.execute(text("SELECT id, rows_read, rows_inserted, source_crs FROM import_batch "
                             "WHERE layer = :layer AND file_sha256 = :sha AND status = 'committed'"),
                        dict(layer=layer.name, sha=sha)).first()
    if done is not None:
        return ImportResult(layer.name, name, sha, "unchanged", done.id, done.rows_read, 0, done.source_crs,
                            [_entry("info", f"this file was imported already as batch {done.id}; nothing changed")])
    workdir = Path(tempfile.mkdtemp(prefix="onemap-import-"))
    try:
        progress(f"{name}: reading")
        source = _open(path, name, workdir, limits, sheet)
        stage.drop_leftovers(conn.connection.driver_connection.cursor())
        savepoint = conn.begin_nested()
        try:
            result = _run(conn, layer, source, name, sha, county, crs, user, progress)
            if dry_run:
                savepoint.rollback()
                result.status, result.batch_id, result.rows_inserted = "dry-run", None, 0
                if result.compliance is not None:      # computed, not stored
                    result.compliance = [{k: v for k, v in a.items()
                                          if k not in ("check_id", "checked_at", "import_batch_id", "id")}
                                         for a in result.compliance]
            else:
                savepoint.commit()
            return result
        except BaseException:
            if savepoint.is_active:
                savepoint.rollback()
            raise
    finally:
        safety.remove_tree(workdir)


def _submitted_files(path: Path) -> list[Path]:
    if path.suffix.lower() == ".shp":
        return [p for p in path.parent.glob(path.stem + ".*")
                if p.suffix.lower() in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    return [path]


def _open(path: Path, name: str, workdir: Path, limits: Limits, sheet: str | None) -> readers.Source:
    if path.suffix.lower() != ".zip":
        return readers.read_source(path, name, limits, sheet)
    files = safety.unpack_zip(path, workdir, limits)
    data = [p for p in files if p.suffix.lower() in readers.SUPPORTED and not p.name.startswith("._")]
    if not data:
        raise ReadFailed(f"{name}: the archive holds no .shp, .gpkg, .geojson, .csv, .xlsx or corner .txt file")
    if len(data) > 1:
        listed = ", ".join(str(p.relative_to(workdir)) for p in data)
        raise ReadFailed(f"{name}: the archive holds several data files ({listed}); submit one per batch")
    return readers.read_source(data[0], f"{name}!{data[0].relative_to(workdir)}", limits, sheet)


def _county_lon(conn: Connection, county: str | None) -> float | None:
    if county is None:
        return None
    row = conn.execute(text("SELECT ST_X(ST_PointOnSurface(geom)) FROM admin_division WHERE code = :c"),
                       dict(c=county)).first()
    return None if row is None else float(row[0])


def _run(conn: Connection, layer: Layer, source: readers.Source, name: str, sha: str, county: str | None,
         crs: int | None, user: str | None, progress) -> ImportResult:
    report: list[dict] = [_entry("info", note) for note in source.notes]
    n = len(source)
    if n == 0:
        raise ReadFailed(f"{name}: holds no features")
    rows = source.row_numbers or list(range(1, n + 1))
    report.extend(_entry("error", problem, row=row, field_=column) for row, column, problem in source.problems)
    mapped, ignored = mapping.map_columns(layer, list(source.columns))
    for col in ignored:
        report.append(_entry("warning", f"column {col!r} matches no field of {layer.name}; ignored"))
    values = {f: source.columns[col] for col, f in mapped.items()}
    lon_hint = _county_lon(conn, county)
    if county is not None and lon_hint is None and _has_counties(conn):
        raise ReadFailed(f"{name}: --county {county} is not a county in admin_division")

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        if source.corner_text is not None:
            geometry = _corner_geometry(source, name, crs, lon_hint)
            if "corners" in {f.name for f in layer.fields}:
                values.setdefault("corners", [source.corner_text])
                values.setdefault("corner_crs", [str(geometry.epsg)])
        else:
            def settle():
                return pool.submit(_settle, source, name, crs, lon_hint, rows, report)
            geometry = None if source.wkb is not None else settle().result()

        fill = _fillable(layer, values, county)
        for f in layer.fields:
            if f.required and f.name not in values and f.name not in fill:
                report.append(_entry("error", f"required field {f.zh} ({f.name}) has no column in the file",
                                     field_=f.name))
        _codes_from_labels(layer, values)
        if source.excel_epoch is not None:
            report.extend(_excel_dates(layer, values, source.excel_epoch))
        staged = [f for f in layer.fields if f.name in values or f.name in fill]
        cur = conn.connection.driver_connection.cursor()
        if n >= BULK_ROWS:     # the duplicate hash, the trigger's transition table, the index sorts stay in memory
            cur.execute("SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '1GB'")
        batch = _Batch(cur, stage.name(layer, sha), layer, staged, values, fill, county, rows, name, progress,
                       "county_code" in {f.name for f in staged} and _has_counties(conn))
        if geometry is None:   # optimistic: the file's WKB staged as it is (EPSG:4490, readable); Shapely
            settling = []      # checks that in a thread while PostgreSQL validates (shapely holds the GIL)
            found = batch.stage_and_check(source.wkb, after_copy=lambda: settling.append(settle()))
            geometry = settling[0].result()
            if not geometry.as_read:       # transformed, swapped or partly unreadable: stage Shapely's
                found = batch.stage_and_check(shapely.to_wkb(geometry.geoms), geometry.bad_rows)
        else:
            found = batch.stage_and_check(shapely.to_wkb(geometry.geoms), geometry.bad_rows)
    finally:
        pool.shutdown()
    epsg = geometry.epsg
    report.extend(geometry.entries)
    report.append(_entry("info", f"source CRS EPSG:{epsg} ({geometry.how})"))
    report.extend(found)
    result = ImportResult(layer.name, name, sha, "imported", rows_read=n, source_crs=epsg, report=report)
    _name_sheet(report, source.sheet)
    if any(r["severity"] == "error" for r in report):
        raise BatchRejected(name, report)

    progress(f"{name}: inserting")
    _issue_numbers(conn, cur, layer, staged, batch.table)
    user = user or getpass.getuser()
    batch_id = conn.execute(text("""
        INSERT INTO import_batch (layer, file_name, file_sha256, county_code, source_crs, imported_by, status,
                                  rows_read, rows_inserted, report)
        VALUES (:layer, :file, :sha, :county, :crs, :user, 'committed', :n, 0, '[]') RETURNING id"""),
        dict(layer=layer.name, file=name, sha=sha, county=county, crs=epsg, user=user, n=n)
    ).scalar_one()
    rebuilt, emptied = _drop_indexes_for_bulk(cur, layer.table, n)
    cols = [f.name for f in staged]
    # the batch's ids as ranges: one when they are contiguous (the usual case: nobody else inserted
    # meanwhile), else range_agg over every id (its subquery runs only then)
    with changes.inserts_after_truncate(cur, layer.table) if emptied else nullcontext():
        cur.execute(f"""
        WITH ins AS (
            INSERT INTO {layer.table} ({', '.join(cols)}, geom)
            SELECT {', '.join(stage.cast_sql(f) for f in staged)}, {stage.geometry_sql(layer)}
            FROM {batch.table} s ORDER BY s.row_no
            RETURNING id),
        ids AS (SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM ins)
        UPDATE import_batch b SET row_ids = CASE
            WHEN ids.n = 0 THEN '{{}}'::int8multirange
            WHEN ids.hi - ids.lo + 1 = ids.n THEN int8multirange(int8range(ids.lo, ids.hi, '[]'))
            ELSE (SELECT range_agg(int8range(id, id, '[]')) FROM ins) END
        FROM ids WHERE b.id = %(batch)s RETURNING ids.n""", dict(batch=batch_id))
        result.rows_inserted = cur.fetchone()[0]
    if rebuilt:
        progress(f"{name}: rebuilding {len(rebuilt)} indexes")
        for definition in rebuilt:
            cur.execute(definition)
        cur.execute(f"ANALYZE {layer.table}")
        report.append(_entry("info", f"bulk load: {len(rebuilt)} indexes of {layer.table} rebuilt after the insert, "
                                     "then analysed"))
    result.batch_id = batch_id
    cur.execute(f"DROP TABLE {batch.table}")
    if layer.name == "approval":     # 建设用地审批合规性核查 at registration, one query for the batch
        progress(f"{name}: compliance check")
        result.compliance = check_and_record(conn, triggered_by="registration", requested_by=user,
                                             import_batch_id=batch_id)
        counts = colour_counts(result.compliance)
        report.append(_entry("info", f"compliance check of the {len(result.compliance)} approvals: "
                                     f"{counts['red']} red, {counts['yellow']} yellow, {counts['green']} green"))
    cur.execute("UPDATE import_batch SET rows_inserted = %(k)s, report = %(r)s WHERE id = %(id)s",
                dict(k=result.rows_inserted, r=Json(report), id=batch_id))
    return result


def _name_sheet(report: list[dict], sheet: str | None) -> list[dict]:
    """A spreadsheet's rows are named by sheet and row number."""
    if sheet is not None:
        for entry in report:
            if entry["row"] is not None:
                entry["sheet"] = sheet
    return report


def _excel_dates(layer: Layer, values: dict, epoch) -> list[dict]:
    """Spreadsheet date fields whose cells hold day serials (a date column formatted as a number)."""
    from etl.importer.xlsx import serials_to_dates
    out = []
    for f in layer.fields:
        if f.name in values and f.type in (FieldType.DATE, FieldType.DATETIME):
            values[f.name], converted = serials_to_dates(values[f.name], epoch, f.type == FieldType.DATETIME)
            if converted:
                serial, when = converted[0]
                out.append(_entry("warning", f"{len(converted)} number(s) in {f.zh} ({f.name}) read as Excel date "
                                             f"serials (e.g. {serial} → {when})", field_=f.name))
    return out


BULK_ROWS = 50_000    # a batch this big, into a table holding fewer rows than it, rebuilds the indexes


def _drop_indexes_for_bulk(cur, table: str, n: int) -> tuple[list[str], bool]:
    """For a big batch into a table with fewer rows than it (a first load), drop the secondary
    indexes and return their definitions, to be rebuilt after the insert, and whether the table
    was TRUNCATEd (below): one sorted build is
    ~2x faster than 5 indexes (GiST included) maintained row by row. The PK and unique
    constraints stay (they check the rows). Inside the batch's transaction: a rejected or rolled
    back batch gets its indexes back; readers of the table wait for the commit.

    An empty table (no row visible, none referenced) is emptied once more with TRUNCATE: it
    gets a new file in this transaction, which PostgreSQL fills without writing WAL when
    wal_level is minimal (1M parcels: the insert 9.9 -> 6.7 s), and syncs at the commit."""
    if n < BULK_ROWS:
        return [], False
    cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %(n)s) t", dict(n=n))
    held = cur.fetchone()[0]
    if held >= n:
        return [], False
    emptied = False
    if held == 0:
        cur.execute("SELECT NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = %(t)s::regclass)",
                    dict(t=table))
        if cur.fetchone()[0]:
            cur.execute(f"TRUNCATE {table}")
            emptied = True
    cur.execute("""SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                   WHERE i.indrelid = %(t)s::regclass
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                   ORDER BY 1""", dict(t=table))
    indexes = cur.fetchall()
    for index, _ in indexes:
        cur.execute(f"DROP INDEX {index}")
    return [definition for _, definition in indexes], emptied


@dataclass
class _Geometry:
    """The geometries settled: in the storage CRS, with the coordinate errors found."""
    geoms: np.ndarray
    epsg: int
    how: str
    bad_rows: set[int] = field(default_factory=set)
    entries: list[dict] = field(default_factory=list)     # report entries (bad coordinates, axes)
    as_read: bool = False                                  # the file's WKB can be staged unchanged


def _settle(source: readers.Source, name: str, crs: int | None, lon_hint: float | None, rows: list[int],
            report: list[dict]) -> _Geometry:
    """Read coordinates, reject non-finite ones by row, resolve the CRS, bring to EPSG:4490."""
    geoms = source.geometries
    unread = source.wkb is not None and bool(
        (shapely.is_missing(geoms) & ~source.wkb.is_null().to_numpy(zero_copy_only=False)).any())
    entries = []
    bad = _bad_coordinates(geoms)
    for i in np.flatnonzero(bad):
        entries.append(_entry("error", "coordinates are not finite or beyond ±1e8 (NaN, inf or garbage)", row=rows[i]))
    if bad.any():
        geoms = np.where(bad, None, geoms)
    bad_rows = {rows[i] for i in np.flatnonzero(bad)}
    coords = readers.in_pieces(shapely.get_coordinates, geoms)      # none for missing geometries
    if len(coords) == 0 and bad_rows:
        raise BatchRejected(name, _name_sheet(report + entries, source.sheet))
    if len(coords) == 0:
        raise ReadFailed(f"{name}: no feature has a usable geometry")
    declared = crs if crs is not None else source.declared_epsg
    resolved = resolve(name, coords[:, 0], coords[:, 1], declared,
                       None if crs is not None else source.declared_crs, lon_hint, source.surveyor_axes)
    if resolved.swapped:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
        entries.append(_entry("warning", "x/y read as surveyors' X = northing, Y = easting"))
    if resolved.epsg != STORAGE_SRID:
        geoms = _to_storage(geoms, resolved.epsg)          # pyproj on whole coordinate arrays
    as_read = not (resolved.swapped or resolved.epsg != STORAGE_SRID or bad_rows or unread)
    return _Geometry(geoms, resolved.epsg, resolved.how, bad_rows, entries, as_read)


class _Batch:
    """Staging (COPY) and validation (SQL) of one batch; run again if the geometries change."""

    def __init__(self, cur, table: str, layer: Layer, staged, values: dict, fill: dict, county: str | None,
                 rows: list[int], name: str, progress, county_rows: bool):
        self.cur, self.table, self.layer, self.staged, self.values = cur, table, layer, staged, values
        self.fill, self.county, self.rows, self.name, self.progress = fill, county, rows, name, progress
        self.county_rows = county_rows

    def stage_and_check(self, wkb, bad_rows: set[int] = frozenset(), after_copy=lambda: None) -> list[dict]:
        n, name, progress = len(self.rows), self.name, self.progress
        progress(f"{name}: staging {n:,d} rows")
        stage.create(self.cur, self.table, self.staged)
        values = self.staged_values = _filled(self.layer, self.values, self.fill, self.county, n)
        columns, rows = [values.get(f.name) for f in self.staged], self.rows
        order = stage.county_order(stage.text_column(values.get("county_code"), n)) if self.county_rows else None
        if order is not None:          # the rows grouped by county for the county check (row numbers kept)
            columns = [None if c is None else stage.text_column(c, n).take(order) for c in columns]
            wkb = stage.wkb_column(wkb, n).take(order)
            rows = np.asarray(rows)[order].tolist()
        stage.copy_rows(self.cur, self.table, [f.name for f in self.staged], columns, wkb, rows,
                        progress=lambda done, total: progress(f"{name}: staged {done:,d} of {total:,d} rows"))
        after_copy()
        # the planner's row counts and value statistics (not the geometry's): parallel scans, hash joins;
        # a sample of 3,000 rows tells enough (the default 30,000 read 1/4 of a 1M-row stage's pages)
        with _setting(self.cur, "default_statistics_target", "10"):
            self.cur.execute(f"ANALYZE {self.table} ({', '.join(['row_no', *(f.name for f in self.staged)])})")
        progress(f"{name}: validating")
        found: list[dict] = []
        policy = mapping.geometry_policy(self.layer.name)
        if policy == "repair" and self.layer.geometry.value == "MULTIPOLYGON":
            found.extend(_repair(self.cur, self.table))
        later = {f for f, how in self.fill.items() if how in ("issued", "computed")}
        checks = stage.checks(self.layer, self.table, self.staged, self.county_rows, policy, later)
        params = {"declared_county": self.county}
        by_check = _check_rows(self.cur, self.table, [c for c in checks if c.per_row], params)
        for check in checks:
            if check.within_file:
                rows = _in_file_duplicates(check, stage.text_column(self.staged_values.get(check.field), n), self.rows)
            else:
                rows = by_check[id(check)] if check.per_row else _check(self.cur, self.table, check, params)
            found.extend(r for r in rows if not (r["row"] in bad_rows and r["problem"] == "no geometry"))
        return found


def _to_storage(geoms: np.ndarray, epsg: int) -> np.ndarray:
    transformer = Transformer.from_crs(epsg, STORAGE_SRID, always_xy=True)
    return shapely.transform(geoms, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))


def _has_counties(conn: Connection) -> bool:
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM admin_division WHERE level = 'county')")).scalar()


def _bad_coordinates(geoms: np.ndarray) -> np.ndarray:
    def bad(part: np.ndarray) -> np.ndarray:
        present = ~shapely.is_missing(part)
        out = np.zeros(len(part), dtype=bool)
        if present.any():
            coords, index = shapely.get_coordinates(part[present], return_index=True)
            wrong = ~np.isfinite(coords).all(axis=1) | (np.abs(np.nan_to_num(coords, nan=0.0)) > MAX_ABS_COORD).any(axis=1)
            out[np.flatnonzero(present)[np.unique(index[wrong])]] = True
        return out
    return readers.in_pieces(bad, geoms)


def _corner_geometry(source: readers.Source, name: str, crs: int | None, lon_hint: float | None):
    try:
        rings = corners.parse_corners(source.corner_text)
        epsg = crs if crs is not None else corners.detect_gk_crs(rings, lon_hint)
        geom = corners.corners_to_geometry(source.corner_text, epsg)
    except corners.CornerError as exc:
        raise CrsProblem(f"{name}: {exc}") from None
    how = "declared" if crs is not None else "detected from the corner values"
    # already converted to lon/lat: staged as EPSG:4490
    return _Geometry(np.array([geom], dtype=object), epsg, how)


def _fillable(layer: Layer, values: dict, county: str | None) -> dict[str, str]:
    """Fields the engine fills where the file leaves them empty: field -> how."""
    names = {f.name for f in layer.fields}
    fill: dict[str, str] = {}
    if "county_code" in names and county is not None:
        fill["county_code"] = "declared"
    for target, (src, _expr) in mapping.DERIVED.get(layer.name, {}).items():
        if src in values and target not in fill:
            fill[target] = "derived"
    if "supervision_no" in names and layer.name in SUPERVISION_KIND:
        fill["supervision_no"] = "issued"
    if "area_m2" in names and layer.geometry.value == "MULTIPOLYGON":
        fill["area_m2"] = "computed"
    return fill


def _filled(layer: Layer, values: dict, fill: dict[str, str], county: str | None, n: int) -> dict:
    """The columns to stage, the fields the file leaves empty filled: by the declared county, or
    derived from another column (column-wise, in Arrow, before the COPY)."""
    out = dict(values)
    for target, how in fill.items():
        if how == "declared":
            given = stage.text_column(out.get(target), n)
            out[target] = pc.coalesce(given, pa.scalar(county, given.type))
        elif how == "derived":
            src, derive = mapping.DERIVED[layer.name][target]
            given, derived = stage.text_column(out.get(target), n), derive(stage.text_column(out[src], n))
            out[target] = pc.coalesce(given, derived.cast(given.type))
    return out


def _codes_from_labels(layer: Layer, values: dict) -> None:
    """A code field may be given by its Chinese label (水田 → 0101, 划拨 → allocation)."""
    for f in layer.fields:
        if f.type == FieldType.CODE and f.name in values:
            by_label = {zh: code for code, (zh, _en) in f.codes.codes.items()}
            by_label.update({en.lower(): code for code, (_zh, en) in f.codes.codes.items()})
            col = values[f.name]
            if isinstance(col, pa.Array):       # column-wise: exact label, else its lower case
                labels = pa.array(list(by_label), pa.string())
                at = pc.coalesce(pc.index_in(col, value_set=labels), pc.index_in(pc.utf8_lower(col), value_set=labels))
                label_code = pc.take(pa.array(list(by_label.values()), pa.string()), at)
                is_code = pc.is_in(col, value_set=pa.array(list(f.codes.codes), pa.string()))
                values[f.name] = pc.if_else(is_code, col, pc.coalesce(label_code, col))
            else:
                values[f.name] = [v if v is None or v in f.codes else by_label.get(v, by_label.get(v.lower(), v))
                                  for v in col]


def _repair(cur, table: str) -> list[dict]:
    """Invalid (multi)polygons made valid; each change reported with the areas before and after.
    The invalid rows are found first (a read: both cores), then only they are updated."""
    cur.execute(f"SELECT row_no FROM {table} WHERE ST_GeometryType(geom) IN ('ST_Polygon', 'ST_MultiPolygon') "
                "AND NOT ST_IsValid(geom)")
    invalid = [row for row, in cur.fetchall()]
    if not invalid:
        return []
    cur.execute(f"""
        WITH fixed AS (
            SELECT row_no, ST_IsValidReason(geom) AS reason, {area_sql('geom')} AS before,
                   ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)) AS g
            FROM {table} WHERE row_no = ANY(%(rows)s))
        UPDATE {table} s SET geom = f.g FROM fixed f WHERE s.row_no = f.row_no
        RETURNING s.row_no, f.reason, f.before, {area_sql('f.g')}""", dict(rows=invalid))
    return [_entry("warning", f"invalid geometry repaired ({reason}); area {before:,.1f} → {after:,.1f} m²", row=row)
            for row, reason, before, after in sorted(cur.fetchall())]


def _found(check: stage.Check, found: list[tuple[int, str]], total: int) -> list[dict]:
    out = [_entry("error", msg, row=row, field_=check.field) for row, msg in found]
    if total > len(found):
        out.append(_entry("error", f"... and {total - len(found)} more rows with this problem", field_=check.field))
    return out


def _in_file_duplicates(check: stage.Check, values: pa.Array, rows: list[int]) -> list[dict]:
    at = stage.duplicates(values)
    found = sorted((rows[i], i) for i in at)[:stage.REPORT_CAP]
    return _found(check, [(row, f"duplicate {stage.quote_literal(values[i].as_py())} within the file")
                          for row, i in found], len(at))


@contextmanager
def _setting(cur, name: str, value: str):
    """A setting changed for the statements inside, then back to what it was (after an error, the
    rollback of the batch's savepoint takes it back)."""
    cur.execute("SELECT current_setting(%(n)s), set_config(%(n)s, %(v)s, true)", dict(n=name, v=value))
    before = cur.fetchone()[0]
    yield
    cur.execute("SELECT set_config(%(n)s, %(v)s, true)", dict(n=name, v=before))


def _check(cur, table: str, check: stage.Check, params: dict) -> list[dict]:
    cur.execute(f"SELECT s.row_no, {check.problem}, count(*) OVER () FROM {table} s {check.joins} "
                f"WHERE {check.predicate} ORDER BY s.row_no LIMIT {stage.REPORT_CAP}", {**check.params, **params})
    found = cur.fetchall()
    return _found(check, [(row, msg) for row, msg, _ in found], found[0][2] if found else 0)


def _check_rows(cur, table: str, checks: list[stage.Check], params: dict) -> dict[int, list[dict]]:
    """The per-row checks in one scan: the rows failing any, with the problem of each check they fail
    (the first REPORT_CAP rows per check, and how many in all); by id() of the check."""
    if not checks:
        return {}
    problems = ", ".join(f"CASE WHEN {c.predicate} THEN {c.problem} END" for c in checks)
    # the planner expects most rows to fail some check (a negated regex: ~all rows) and so to pass
    # through the Gather: told the passing is free, it scans on both cores (1M parcels: 2.9 -> 1.8 s)
    with _setting(cur, "parallel_tuple_cost", "0"):
        cur.execute(f"""
            SELECT k, row_no, problem, n FROM (
                SELECT p.k, f.row_no, p.problem, count(*) OVER (PARTITION BY p.k) AS n,
                       row_number() OVER (PARTITION BY p.k ORDER BY f.row_no) AS i
                FROM (SELECT s.row_no, ARRAY[{problems}]::text[] AS problems FROM {table} s
                      WHERE {' OR '.join(f'({c.predicate})' for c in checks)}) f,
                     unnest(f.problems) WITH ORDINALITY AS p(problem, k)
                WHERE p.problem IS NOT NULL) r
            WHERE i <= {stage.REPORT_CAP} ORDER BY k, row_no""",
                    {k: v for c in checks for k, v in c.params.items()} | params)
        rows = cur.fetchall()
    found: dict[int, list[tuple[int, str]]] = {k: [] for k in range(1, len(checks) + 1)}
    totals = dict.fromkeys(found, 0)
    for k, row, problem, total in rows:
        found[k].append((row, problem))
        totals[k] = total
    return {id(c): _found(c, found[k], totals[k]) for k, c in enumerate(checks, start=1)}


def _issue_numbers(conn: Connection, cur, layer: Layer, staged, table: str) -> None:
    """统一监管号 issued at registration for the rows that come without one."""
    if layer.name not in SUPERVISION_KIND or "supervision_no" not in {f.name for f in staged}:
        return
    cur.execute(f"SELECT row_no, county_code FROM {table} WHERE supervision_no IS NULL ORDER BY row_no")
    missing = cur.fetchall()
    if not missing:
        return
    year = date.today().year
    numbers = issue_many(conn, [(c, year, SUPERVISION_KIND[layer.name]) for _, c in missing])
    cur.execute(f"UPDATE {table} s SET supervision_no = t.n FROM unnest(%(rows)s::int[], %(nums)s::text[]) "
                f"AS t(r, n) WHERE s.row_no = t.r", dict(rows=[r for r, _ in missing], nums=numbers))
