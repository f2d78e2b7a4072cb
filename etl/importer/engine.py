"""One import: read → map → settle coordinates and CRS and run the per-row checks (worker
thread) while the rows go in: COPY into the stage, its set checks in SQL and one insert; or, for a
first big load, COPY straight into the emptied layer → record the batch. All inside a
savepoint: a rejected batch, or a dry run, leaves the database as it was.
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
import psycopg2
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg2.extras import Json
from pyproj import Transformer
from sqlalchemy import Connection, text

from etl import corners
from etl.importer import checks, mapping, readers, safety, stage
from etl.importer.crs import resolve
from etl.importer.errors import BatchRejected, CrsProblem, ReadFailed
from etl.importer.safety import Limits
from layers import REGISTRY
from layers.registry import STORAGE_SRID, FieldType, Geometry, Layer
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
    workdir = Path(tempfile.mkdtemp(prefix="onemap-import-"))
    try:
        with ThreadPoolExecutor(max_workers=1) as hasher:      # the file hashed while it is read
            hashing = hasher.submit(safety.sha256_of, members)
            progress(f"{name}: reading")
            source = _open(path, name, workdir, limits, sheet)
            sha = hashing.result()
        # two imports of the same file into the same layer wait for each other (then one is "unchanged")
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), dict(key=f"{layer.name}:{sha}"))
        done = conn.execute(text("SELECT id, rows_read, rows_inserted, source_crs FROM import_batch "
                                 "WHERE layer = :layer AND file_sha256 = :sha AND status = 'committed'"),
                            dict(layer=layer.name, sha=sha)).first()
        if done is not None:
            return ImportResult(layer.name, name, sha, "unchanged", done.id, done.rows_read, 0, done.source_crs,
                                [_entry("info", f"this file was imported already as batch {done.id}; nothing changed")])
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

    if source.corner_text is not None:
        geometry = _corner_geometry(source, name, crs, lon_hint)
        if "corners" in {f.name for f in layer.fields}:
            values.setdefault("corners", [source.corner_text])
            values.setdefault("corner_crs", [str(geometry.epsg)])
    elif source.wkb is None:         # CSV, spreadsheets: Shapely geometries made while reading
        geometry = _settle(source, name, crs, lon_hint, rows, report)
    else:                            # GDAL formats: settled in the worker thread, below
        geometry = None

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
    filled = _filled(layer, values, fill, county, n)
    staged_values = {f.name: stage.text_column(filled.get(f.name), n) for f in staged}
    county_rows = "county_code" in staged_values and _has_counties(conn)
    policy = mapping.geometry_policy(layer.name)
    plan = checks.plan(layer, staged, county_rows, policy, {f for f, how in fill.items() if how in ("issued", "computed")})
    known, outlines = _divisions(cur, staged_values["county_code"]) if county_rows else (frozenset(), {})
    batch = _Batch(cur, stage.name(layer, sha), staged, staged_values, rows, name, progress)

    def settle_and_check(geometry):
        """In the worker thread: the geometries settled (GDAL formats), then every per-row check."""
        if geometry is None:
            geometry = _settle(source, name, crs, lon_hint, rows, report)
        subject = checks.Rows(layer, staged_values, geometry.geoms, county, known, outlines, geometry.valid)
        by_check = checks.run_per_row(plan, subject, rows)
        invalid = subject.invalid if policy == "repair" and layer.geometry == Geometry.MULTIPOLYGON else ()
        if geometry.as_read:     # the file's WKB is what gets stored: the Shapely objects are freed here,
            geometry.geoms = None   # while PostgreSQL works (a reference cycle kept them to the exit)
            source.forget_geometries()
        return geometry, by_check, invalid

    # while Shapely reads and checks the geometries in the worker thread, the file's WKB (optimistic:
    # EPSG:4490, readable) goes straight into the emptied layer (a first big load), else into the stage
    rebuilt, emptied = _drop_indexes_for_bulk(cur, layer.table, n)
    # the TRUNCATE's trigger bumped the layer's version and recorded the whole world: the rows written
    # after it (loaded, repaired, given their area) need no boxes of their own
    with changes.writes_after_truncate(cur, layer.table) if emptied else nullcontext():
        direct = _direct_columns(layer, staged, staged_values, source.wkb) if emptied and geometry is None else None
        with ThreadPoolExecutor(max_workers=1) as pool:
            checking = []

            def start_checks():     # once the first rows are on their way: Shapely's reading holds the GIL
                if not checking:    # that the COPY's joiner needs to start
                    checking.append(pool.submit(settle_and_check, geometry))

            first_id = _load_directly(cur, layer.table, *direct, rebuilt, name, progress, start_checks) if direct else None
            start_checks()
            if first_id is None:
                batch.stage(source.wkb if geometry is None else shapely.to_wkb(geometry.geoms))
                progress(f"{name}: validating")
                by_check = batch.set_checks(plan)
            else:      # the emptied table holds no value to be duplicated; no field refers to another table
                by_check = {id(c): [] for c in plan if not c.per_row}
            geometry, by_row, invalid = checking[0].result()
        by_check.update(by_row)
        if source.wkb is not None and not geometry.as_read:       # transformed, swapped or partly unreadable
            loaded, first_id = first_id is not None, None
            if loaded:                      # the load took the file's coordinates: undone
                cur.execute(f"ROLLBACK TO SAVEPOINT {DIRECT_LOAD}; RELEASE SAVEPOINT {DIRECT_LOAD}")
            batch.stage(shapely.to_wkb(geometry.geoms))
            if loaded:
                by_check.update(batch.set_checks(plan))
        invalid_rows = [rows[i] for i in invalid]
        if first_id is not None:
            cur.execute(f"RELEASE SAVEPOINT {DIRECT_LOAD}")
            found = _repair(cur, layer.table, "id", [first_id + int(i) for i in invalid], invalid_rows)
        else:
            found = _repair(cur, batch.table, "row_no", invalid_rows, invalid_rows)
        for check in plan:
            found.extend(r for r in by_check[id(check)]
                         if not (r["row"] in geometry.bad_rows and r["problem"] == "no geometry"))
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
        if first_id is not None:
            last_id = first_id + n - 1
            if "area_m2" in staged_values and staged_values["area_m2"].null_count:   # not given: on the ellipsoid
                cur.execute(f"UPDATE {layer.table} SET area_m2 = {area_sql('geom')} "
                            "WHERE id BETWEEN %(lo)s AND %(hi)s AND area_m2 IS NULL", dict(lo=first_id, hi=last_id))
            cur.execute("UPDATE import_batch SET row_ids = int8multirange(int8range(%(lo)s, %(hi)s, '[]')) "
                        "WHERE id = %(batch)s", dict(lo=first_id, hi=last_id, batch=batch_id))
            result.rows_inserted = n
        else:
            _insert(cur, layer, staged, batch.table, batch_id, result, rebuilt, lambda msg: progress(f"{name}: {msg}"))
    if rebuilt:
        report.append(_entry("info", f"bulk load: {len(rebuilt)} indexes of {layer.table} rebuilt after the insert, "
                                     "then analysed"))
    result.batch_id = batch_id
    if batch.created:
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


def _insert(cur, layer: Layer, staged, table: str, batch_id: int, result: ImportResult, rebuilt: list[str],
            say) -> None:
    """The stage's rows into the layer, cast, in one statement; the batch's ids kept as ranges: one
    when they are contiguous (the usual case: nobody else inserted meanwhile), else range_agg over
    every id (its subquery runs only then). Then the dropped indexes rebuilt."""
    cols = [f.name for f in staged]
    cur.execute(f"""
    WITH ins AS (
        INSERT INTO {layer.table} ({', '.join(cols)}, geom)
        SELECT {', '.join(stage.cast_sql(f) for f in staged)}, {stage.geometry_sql(layer)}
        FROM {table} s ORDER BY s.row_no
        RETURNING id),
    ids AS (SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM ins)
    UPDATE import_batch b SET row_ids = CASE
        WHEN ids.n = 0 THEN '{{}}'::int8multirange
        WHEN ids.hi - ids.lo + 1 = ids.n THEN int8multirange(int8range(ids.lo, ids.hi, '[]'))
        ELSE (SELECT range_agg(int8range(id, id, '[]')) FROM ins) END
    FROM ids WHERE b.id = %(batch)s RETURNING ids.n""", dict(batch=batch_id))
    result.rows_inserted = cur.fetchone()[0]
    _rebuild(cur, layer.table, rebuilt, say)


def _rebuild(cur, table: str, definitions: list[str], say) -> None:
    """The indexes built, then the table analysed: in one round trip, so the server goes from one
    statement to the next without waiting for this thread to get the GIL back from the worker
    (1M parcels, alternating: 8.73-8.94 s against 9.15-9.29 s for the whole command)."""
    if definitions:
        say(f"rebuilding {len(definitions)} indexes")
        cur.execute("; ".join([*definitions, f"ANALYZE {table}"]))


DIRECT_LOAD = "onemap_direct_load"


def _direct_columns(layer: Layer, staged, values: dict[str, pa.Array], wkb: pa.Array) -> tuple[list[str], list] | None:
    """The columns of a first big load COPYed straight into the layer, each value in its binary
    form; None where the stage is needed: a field referring to another table (a set check), a
    number issued at registration, a type or value the encoding leaves to the insert's casts."""
    if layer.name in SUPERVISION_KIND or any(f.references for f in staged):
        return None
    geom = stage.layer_wkb(layer, wkb)
    encoded = [stage.encode(f, values[f.name]) for f in staged]
    if geom is None or any(e is None for e in encoded):
        return None
    return [f.name for f in staged] + ["geom"], encoded + [geom]


def _load_directly(cur, table: str, names: list[str], columns: list, rebuilt: list[str], name: str,
                   progress, started) -> int | None:
    """A first big load: the rows COPYed into the layer itself (TRUNCATEd in this transaction, so
    without WAL), under ids reserved for them (the TRUNCATE's
    lock keeps every other writer out), the dropped indexes rebuilt; the checks run meanwhile.
    Returns the first id, the savepoint DIRECT_LOAD still open (released once the checks pass);
    None if PostgreSQL refused a row (a missing required value, a duplicate, ...: the checks
    report it), everything since the savepoint undone."""
    n = len(columns[0])
    cur.execute("SELECT nextval(pg_get_serial_sequence(%(t)s, 'id'))", dict(t=table))
    first = cur.fetchone()[0]
    cur.execute("SELECT setval(pg_get_serial_sequence(%(t)s, 'id'), %(last)s)", dict(t=table, last=first + n - 1))
    cur.execute(f"SAVEPOINT {DIRECT_LOAD}")
    progress(f"{name}: loading {n:,d} rows into {table}")
    try:
        stage.copy_binary(cur, table, ["id", *names], [stage.fixed(np.arange(first, first + n, dtype=">i8")), *columns],
                          progress=lambda done, total: progress(f"{name}: loaded {done:,d} of {total:,d} rows"),
                          started=started)
    except psycopg2.DatabaseError:
        cur.execute(f"ROLLBACK TO SAVEPOINT {DIRECT_LOAD}; RELEASE SAVEPOINT {DIRECT_LOAD}")
        return None
    _rebuild(cur, table, rebuilt, lambda msg: progress(f"{name}: {msg}"))
    return first


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
    valid: np.ndarray | None = None                        # shapely.is_valid of `geoms`, if known


def _settle(source: readers.Source, name: str, crs: int | None, lon_hint: float | None, rows: list[int],
            report: list[dict]) -> _Geometry:
    """Read coordinates, reject non-finite ones by row, resolve the CRS, bring to EPSG:4490."""
    geoms = source.geometries
    unread = source.wkb is not None and bool(
        (shapely.is_missing(geoms) & ~source.wkb.is_null().to_numpy(zero_copy_only=False)).any())
    entries = []
    valid = shapely.is_valid(geoms)            # (the checks use it too, for the geometries as read)
    bad, extent = _bad_coordinates(geoms, valid)
    for i in np.flatnonzero(bad):
        entries.append(_entry("error", "coordinates are not finite or beyond ±1e8 (NaN, inf or garbage)", row=rows[i]))
    if bad.any():
        geoms = np.where(bad, None, geoms)
    bad_rows = {rows[i] for i in np.flatnonzero(bad)}
    if extent is None and bad_rows:
        raise BatchRejected(name, _name_sheet(report + entries, source.sheet))
    if extent is None:
        raise ReadFailed(f"{name}: no feature has a usable geometry")
    declared = crs if crs is not None else source.declared_epsg
    # the extremes tell as much as every coordinate: the layout, the zone prefix (x // 1e6 grows with x)
    resolved = resolve(name, extent[:, 0], extent[:, 1], declared,
                       None if crs is not None else source.declared_crs, lon_hint, source.surveyor_axes)
    if resolved.swapped:
        geoms = shapely.transform(geoms, lambda c: c[:, ::-1])
        entries.append(_entry("warning", "x/y read as surveyors' X = northing, Y = easting"))
    if resolved.epsg != STORAGE_SRID:
        geoms = _to_storage(geoms, resolved.epsg)          # pyproj on whole coordinate arrays
    moved = resolved.swapped or resolved.epsg != STORAGE_SRID
    as_read = not (moved or bad_rows or unread)
    return _Geometry(geoms, resolved.epsg, resolved.how, bad_rows, entries, as_read, None if moved else valid)


class _Batch:
    """The stage of one batch (COPY) and the set checks over it (SQL)."""

    def __init__(self, cur, table: str, staged, values: dict[str, pa.Array], rows: list[int], name: str, progress):
        self.cur, self.table, self.staged, self.values = cur, table, staged, values
        self.rows, self.name, self.progress = rows, name, progress
        self.created = False

    def stage(self, wkb) -> None:
        """The rows into a new stage table, then analysed."""
        n, name, progress = len(self.rows), self.name, self.progress
        self.created = True
        progress(f"{name}: staging {n:,d} rows")
        stage.create(self.cur, self.table, self.staged)
        stage.copy_rows(self.cur, self.table, [f.name for f in self.staged], [self.values[f.name] for f in self.staged],
                        wkb, self.rows,
                        progress=lambda done, total: progress(f"{name}: staged {done:,d} of {total:,d} rows"))
        # the planner's row counts and value statistics (not the geometry's): parallel scans, hash joins;
        # a sample of 3,000 rows tells enough (the default 30,000 read 1/4 of a 1M-row stage's pages)
        with _setting(self.cur, "default_statistics_target", "10"):
            self.cur.execute(f"ANALYZE {self.table} ({', '.join(['row_no', *(f.name for f in self.staged)])})")

    def set_checks(self, plan: list[checks.Check]) -> dict[int, list[dict]]:
        """The report entries of the plan's set checks, by id() of the check."""
        return {id(c): _check(self.cur, self.table, c) for c in plan if not c.per_row}


def _to_storage(geoms: np.ndarray, epsg: int) -> np.ndarray:
    transformer = Transformer.from_crs(epsg, STORAGE_SRID, always_xy=True)
    return shapely.transform(geoms, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))


def _has_counties(conn: Connection) -> bool:
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM admin_division WHERE level = 'county')")).scalar()


def _bad_coordinates(geoms: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Which geometries hold a coordinate that is not finite or beyond ±MAX_ABS_COORD, and the
    extremes of the others' coordinates ([[min x, min y], [max x, max y]]; None: no coordinate).
    A coordinate that is not finite makes a geometry invalid (GEOS's IsValidOp), one beyond the
    limit shows in its bounds: only such geometries are read coordinate by coordinate."""
    box = shapely.bounds(geoms)                  # NaN: missing or empty
    finite = np.isfinite(box).all(axis=1)
    with np.errstate(invalid="ignore"):
        odd = ~shapely.is_missing(geoms) & (~valid | ~finite | (np.abs(box) > MAX_ABS_COORD).any(axis=1))
    out = np.zeros(len(geoms), dtype=bool)
    at = np.flatnonzero(odd)
    for start in range(0, len(at), readers.PIECE):
        part = at[start:start + readers.PIECE]
        coords, index = shapely.get_coordinates(geoms[part], return_index=True)
        wrong = ~np.isfinite(coords).all(axis=1) | (np.abs(np.nan_to_num(coords, nan=0.0)) > MAX_ABS_COORD).any(axis=1)
        out[part[np.unique(index[wrong])]] = True
    good = finite & ~out
    if not good.any():
        return out, None
    box = box[good]
    return out, np.array([[box[:, 0].min(), box[:, 1].min()], [box[:, 2].max(), box[:, 3].max()]])


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


def _repair(cur, table: str, key: str, keys: list[int], rows: list[int]) -> list[dict]:
    """The invalid (multi)polygons whose `key` is in `keys` (the stage's row numbers, or the
    layer's ids) made valid; each change reported for its row (`rows`, in the order of `keys`)
    with PostGIS's reason and the areas before and after (a row PostGIS finds valid is left alone)."""
    if not keys:
        return []
    row_of = dict(zip(keys, rows))
    cur.execute(f"""
        WITH fixed AS (
            SELECT {key} AS k, ST_IsValidReason(geom) AS reason, {area_sql('geom')} AS before,
                   ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)) AS g
            FROM {table} WHERE {key} = ANY(%(keys)s) AND NOT ST_IsValid(geom))
        UPDATE {table} s SET geom = f.g FROM fixed f WHERE s.{key} = f.k
        RETURNING f.k, f.reason, f.before, {area_sql('f.g')}""", dict(keys=keys))
    return [_entry("warning", f"invalid geometry repaired ({reason}); area {before:,.1f} → {after:,.1f} m²", row=row)
            for row, reason, before, after in sorted((row_of[k], *rest) for k, *rest in cur.fetchall())]


def _divisions(cur, codes: pa.Array) -> tuple[frozenset[str], dict]:
    """Of the county codes the rows name, those of admin_division, and their outlines (Shapely)."""
    named = [c for c in pc.unique(codes).to_pylist() if c is not None]
    cur.execute("SELECT code, ST_AsBinary(geom) FROM admin_division WHERE code = ANY(%(c)s)", dict(c=named))
    found = cur.fetchall()
    return frozenset(code for code, _ in found), {code: shapely.from_wkb(bytes(wkb)) for code, wkb in found if wkb}


@contextmanager
def _setting(cur, name: str, value: str):
    """A setting changed for the statements inside, then back to what it was (after an error, the
    rollback of the batch's savepoint takes it back)."""
    cur.execute("SELECT current_setting(%(n)s), set_config(%(n)s, %(v)s, true)", dict(n=name, v=value))
    before = cur.fetchone()[0]
    yield
    cur.execute("SELECT set_config(%(n)s, %(v)s, true)", dict(n=name, v=before))


def _check(cur, table: str, check: checks.Check) -> list[dict]:
    cur.execute(f"SELECT s.row_no, {check.problem_sql}, count(*) OVER () FROM {table} s "
                f"WHERE {check.predicate} ORDER BY s.row_no LIMIT {checks.REPORT_CAP}")
    found = cur.fetchall()
    return checks.entries(check, [(row, msg) for row, msg, _ in found], found[0][2] if found else 0)


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
