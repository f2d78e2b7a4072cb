"""The staging table of one batch and the SQL that validates it, set-based.

Every source value arrives as text (a binary COPY), one column per registry field; checks are SQL
predicates over the whole table, each giving (row, field, problem); the insert casts in one
statement. Identifiers are registry field names (code-defined), values are parameters.

The stage is an UNLOGGED table named by the batch (layer and file hash), not a TEMP one:
PostgreSQL never scans a temporary table in parallel, an unlogged one it does (the checks use
both cores). It is created inside the import's transaction, so a rejected, failed, dry or
crashed import takes it away with its rollback; a successful one drops it before the commit.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from layers.registry import STORAGE_SRID, Field, FieldType, Geometry, Layer
from services.areas import area_sql

PREFIX = "import_stage_"
REPORT_CAP = 100     # rows reported per check; the rest are counted

ALLOWED_TYPES = {
    Geometry.MULTIPOLYGON: ("ST_Polygon", "ST_MultiPolygon"),
    Geometry.POINT: ("ST_Point",),
    Geometry.MULTILINESTRING: ("ST_LineString", "ST_MultiLineString"),
}
TYPE_WORDS = {Geometry.MULTIPOLYGON: "(Multi)Polygon", Geometry.POINT: "Point",
              Geometry.MULTILINESTRING: "(Multi)LineString"}

_INT = r"^[+-]?\d{1,18}$"
_FLOAT = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
# one alternative per separator: a back-reference would push PostgreSQL's regex engine onto its slow path
_DATE = "|".join(rf"^\d{{4}}{sep}(0?[1-9]|1[0-2]){sep}(0?[1-9]|[12]\d|3[01])$" for sep in ("-", "/", r"\.")) + \
    r"|^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"
_DATETIME = _DATE + r"|^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
TRUE_WORDS = ("t", "true", "1", "y", "yes", "是")
FALSE_WORDS = ("f", "false", "0", "n", "no", "否")

FORMAT_CHECKS = {
    FieldType.INTEGER: (_INT, "not an integer"),
    FieldType.FLOAT: (_FLOAT, "not a number"),
    FieldType.DATE: (_DATE, "not a date (YYYY-MM-DD)"),
    FieldType.DATETIME: (_DATETIME, "not a date-time (YYYY-MM-DD hh:mm[:ss][±zz])"),
}


def quote_literal(value: str) -> str:
    """PostgreSQL's quote_literal() (a value as the report quotes it)."""
    quoted = "'" + value.replace("'", "''").replace("\\", "\\\\") + "'"
    return "E" + quoted if "\\" in value else quoted


def duplicates(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Positions of the values that occur more than once (nulls never do), in order."""
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.drop_null(repeated)
    if len(repeated) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(pc.is_in(values, value_set=repeated).to_numpy(zero_copy_only=False))


def county_order(county_codes: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """The order that stages the rows grouped by county (a stable sort by code), or None when the
    file already keeps each county's rows together (an export by county, the usual case)."""
    codes = county_codes.combine_chunks() if isinstance(county_codes, pa.ChunkedArray) else county_codes
    if len(codes) < 2:
        return None
    codes = pc.fill_null(codes, "\0")          # no code (text holds no NUL): one more "county"
    runs = 1 + pc.sum(pc.not_equal(codes[1:], codes[:-1])).as_py()
    if runs == len(pc.unique(codes)):
        return None
    return pc.sort_indices(codes).to_numpy()


def sql_list(words) -> str:
    """('a', 'b') for code-defined words (never user input)."""
    return "(" + ", ".join(f"'{w}'" for w in words) + ")"


def name(layer: Layer, sha256: str) -> str:
    """The stage of one batch: its layer and file (the same pair the import's lock is keyed on)."""
    return f"{PREFIX}{layer.name}_{sha256[:16]}"


def drop_leftovers(cur) -> list[str]:
    """Drop stage tables left committed (none should be: each is dropped or rolled back with its
    import; a stage another import is using is not visible here before that import commits)."""
    cur.execute("SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE %(p)s "
                "AND c.relnamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())", dict(p=PREFIX.replace("_", r"\_") + "%"))
    tables = [t for t, in cur.fetchall()]
    for table in tables:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    return tables


def create(cur, table: str, fields: Iterable[Field]) -> None:
    cols = ", ".join(f"{f.name} text" for f in fields)
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    # the typmod gives plain WKB (no SRID) the storage SRID as it is copied in
    cur.execute(f"CREATE UNLOGGED TABLE {table} (row_no integer PRIMARY KEY, {cols}{', ' if cols else ''}"
                f"geom geometry(Geometry, {STORAGE_SRID}))")


STEP = 200_000       # rows per COPY: the buffer stays ~100 MB

# COPY ... (FORMAT binary): the signature, no flags, no header extension; -1 fields ends the data
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


def text_column(values, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.string())
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def wkb_column(geoms, n: int) -> pa.Array:
    """The geometries as a binary Arrow array of WKB (None: NULL)."""
    if geoms is None:
        return pa.nulls(n, pa.binary())
    if isinstance(geoms, (pa.Array, pa.ChunkedArray)):
        return geoms
    return pa.array(geoms, type=pa.binary())


def _fixed(raw: np.ndarray) -> pa.Array:
    """A structured numpy array's records as a binary Arrow array (one value per record)."""
    size = raw.dtype.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(raw), [None, pa.py_buffer(raw.tobytes())]) \
        .cast(pa.binary())


def _fields(values) -> pa.Array:
    """A column's values as fields of a binary COPY row: a 4-byte big-endian length, then the
    bytes as they are (text: its UTF-8; geometry: WKB, read by PostGIS's geometry_recv); NULL:
    length -1 and no bytes."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type):
        values = values.cast(pa.binary())      # one slice of STEP rows: well below 2 GB
    elif not pa.types.is_binary(values.type):
        values = values.cast(pa.binary())
    lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False).astype(">i4")
    return pc.binary_join_element_wise(_fixed(lengths), pc.fill_null(values, pa.scalar(b"", pa.binary())),
                                       pa.scalar(b"", pa.binary()))


def copy_rows(cur, stage: str, field_names: list[str], columns: list, geoms, rows: list[int],
              progress=lambda done, total: None) -> None:
    """COPY in PostgreSQL's binary format, each row's fields joined by Arrow (C++, no Python loop
    per cell; no CSV quoting, no hex WKB), in slices of STEP rows. `columns` holds per field a
    list or an Arrow array of text (None: all NULL); `geoms` the WKB (an Arrow binary array, or
    an array of bytes)."""
    n = len(rows)
    columns = [text_column(c, n) for c in columns]
    wkb = wkb_column(geoms, n)
    row_no = np.asarray(rows, dtype=np.int32)
    # each row starts with its field count (int16), then the row_no field (length 4, int4)
    head = np.dtype([("fields", ">i2"), ("length", ">i4"), ("row_no", ">i4")])
    sql = f"COPY {stage} (row_no, {''.join(f + ', ' for f in field_names)}geom) FROM STDIN WITH (FORMAT binary)"
    for start in range(0, n, STEP):
        stop = min(start + STEP, n)
        first = np.empty(stop - start, dtype=head)
        first["fields"], first["length"], first["row_no"] = 2 + len(columns), 4, row_no[start:stop]
        parts = [_fixed(first), *(_fields(c.slice(start, stop - start)) for c in columns),
                 _fields(wkb.slice(start, stop - start))]
        joined = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()))
        _, offsets, data = joined.buffers()
        off = np.frombuffer(offsets, dtype=np.int32)[joined.offset:joined.offset + len(joined) + 1]
        body = memoryview(data)[off[0]:off[-1]]
        buf = io.BytesIO()
        buf.write(_COPY_HEADER)
        buf.write(body)
        buf.write(_COPY_TRAILER)
        buf.seek(0)
        cur.copy_expert(sql, buf, size=1 << 20)
        progress(stop, n)


def cast_sql(f: Field, expr: str | None = None) -> str:
    v = expr or f"s.{f.name}"
    if f.name == "area_m2" and expr is None:       # not given: on the CGCS2000 ellipsoid
        return f"coalesce(({v})::double precision, {area_sql('s.geom')})"
    if f.type == FieldType.INTEGER:
        return f"({v})::bigint"
    if f.type == FieldType.FLOAT:
        return f"({v})::double precision"
    if f.type == FieldType.DATE:
        return (f"CASE WHEN {v} ~ '^\\d{{8}}$' THEN to_date({v}, 'YYYYMMDD') "
                f"ELSE (translate({v}, '/.', '--'))::date END")
    if f.type == FieldType.DATETIME:
        return f"({v})::timestamptz"
    if f.type == FieldType.BOOLEAN:
        return (f"CASE WHEN lower({v}) IN {sql_list(TRUE_WORDS)} THEN true "
                f"WHEN lower({v}) IN {sql_list(FALSE_WORDS)} THEN false END")
    if f.type == FieldType.CODES:
        return f"string_to_array(regexp_replace({v}, '\\s', '', 'g'), ',')"
    if f.type == FieldType.JSON:
        return f"({v})::jsonb"
    return v


def geometry_sql(layer: Layer) -> str:
    if layer.geometry == Geometry.POINT:
        return "s.geom"
    single = {Geometry.MULTIPOLYGON: "ST_Polygon", Geometry.MULTILINESTRING: "ST_LineString"}[layer.geometry]
    # ST_Multi rebuilds every geometry (0.9 s per 1M parcels); the type is read from the header
    return f"CASE WHEN ST_GeometryType(s.geom) = '{single}' THEN ST_Multi(s.geom) ELSE s.geom END"


@dataclass(frozen=True)
class Check:
    """One check: rows of the stage `s` where `predicate` holds get `problem` (an SQL text
    expression) for `field`. A per-row check looks at its own row only: all of them run together
    in one (parallel) scan. The others hold a subquery (duplicates in the table, references,
    counties) and run as statements of their own, where PostgreSQL turns it into a (parallel)
    join. Duplicates within the file are counted on the Arrow column (a hash of 1M values:
    ~0.1 s; the SQL GROUP BY ... HAVING was hashed once per parallel worker: 2.5 s)."""
    field: str | None
    predicate: str | None
    problem: str | None
    params: dict
    per_row: bool = True
    within_file: bool = False       # duplicates of `field` within the file: found in Arrow, not SQL
    joins: str = ""                 # joined to the stage `s` (a set-based check)


def checks(layer: Layer, stage: str, staged: list[Field], county_rows: bool, policy: str,
           filled_later: set[str] = frozenset()) -> list[Check]:
    """The checks of a batch staged in `stage`, in report order."""
    out: list[Check] = []
    allowed = ALLOWED_TYPES[layer.geometry]
    words = TYPE_WORDS[layer.geometry]
    out.append(Check(None, "s.geom IS NULL", "'no geometry'", {}))
    out.append(Check(None, f"s.geom IS NOT NULL AND ST_GeometryType(s.geom) NOT IN {sql_list(allowed)}",
                f"'wrong geometry type ' || substr(ST_GeometryType(s.geom), 4) || ': {layer.name} takes {words}'", {}))
    out.append(Check(None, f"s.geom IS NOT NULL AND ST_GeometryType(s.geom) IN {sql_list(allowed)} AND ST_IsEmpty(s.geom)",
                "'empty geometry'", {}))
    if policy == "reject":
        out.append(Check(None, f"ST_GeometryType(s.geom) IN {sql_list(allowed)} AND NOT ST_IsEmpty(s.geom) AND NOT ST_IsValid(s.geom)",
                    "'invalid geometry (' || ST_IsValidReason(s.geom) || '); this layer does not repair geometries'",
                    {}))
    for f in staged:
        col = f"s.{f.name}"
        if f.required and f.name not in filled_later:
            out.append(Check(f.name, f"{col} IS NULL", f"'required {f.zh} ({f.name}) is missing'", {}))
        if f.type in FORMAT_CHECKS:
            pattern, words_ = FORMAT_CHECKS[f.type]
            out.append(Check(f.name, f"{col} IS NOT NULL AND {col} !~ %(re_{f.name})s",
                        f"quote_literal({col}) || ' is {words_}'", {f"re_{f.name}": pattern}))
        if f.type == FieldType.BOOLEAN:
            out.append(Check(f.name, f"{col} IS NOT NULL AND lower({col}) NOT IN {sql_list(TRUE_WORDS + FALSE_WORDS)}",
                        f"quote_literal({col}) || ' is not yes/no'", {}))
        if f.type == FieldType.CODE:
            out.append(Check(f.name, f"{col} IS NOT NULL AND NOT ({col} = ANY(%(codes_{f.name})s))",
                        f"quote_literal({col}) || ' is not in the code list {f.codes.zh} ({f.codes.name})'",
                        {f"codes_{f.name}": list(f.codes.codes)}))
        if f.type == FieldType.CODES:
            out.append(Check(f.name, f"{col} IS NOT NULL AND NOT ({cast_sql(f, col)} <@ %(codes_{f.name})s)",
                        f"quote_literal({col}) || ' holds a code not in the code list {f.codes.zh} ({f.codes.name})'",
                        {f"codes_{f.name}": list(f.codes.codes)}))
        if f.unique:
            out.append(Check(f.name, None, None, {}, per_row=False, within_file=True))
            existing = f"t.{f.name}" if f.type in (FieldType.TEXT, FieldType.CODE) else f"t.{f.name}::text"
            out.append(Check(f.name, f"{col} IS NOT NULL AND EXISTS (SELECT 1 FROM {layer.table} t WHERE {existing} = {col})",
                             f"'duplicate: ' || quote_literal({col}) || ' is already in {layer.table}'", {}, per_row=False))
        if f.references:
            table, column = f.references.split(".")
            if f.type == FieldType.INTEGER:
                target = f"CASE WHEN {col} ~ '{_INT}' THEN NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col}::bigint) END"
            else:
                target = f"NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col})"
            out.append(Check(f.name, f"{col} IS NOT NULL AND {target}",
                             f"quote_literal({col}) || ' does not exist in {table}.{column}'", {}, per_row=False))
    if county_rows:
        out.append(Check("county_code", "s.county_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM admin_division a "
                                   "WHERE a.code = s.county_code)",
                    "'unknown county code ' || quote_literal(s.county_code)", {}, per_row=False))
        out.append(Check("county_code", "%(declared_county)s::text IS NOT NULL AND s.county_code <> %(declared_county)s",
                    "'county ' || s.county_code || ' is not the declared county ' || %(declared_county)s", {}))
        # a hash join with the divisions by code (unknown code: no row, no finding) over the stage, whose rows
        # are grouped by county (see `county_order`): each worker of the parallel scan meets each county's
        # outline in runs, and PostGIS reuses its prepared geometry (262k parcels: 0.67 s on both cores, vs
        # 1.85 s for the rows sorted by county under a scalar subquery; the same join over the rows in
        # random order rebuilt the prepared outline at almost every row: 169 s)
        out.append(Check(None, f"ST_GeometryType(s.geom) IN {sql_list(allowed)} AND NOT ST_IsEmpty(s.geom) "
                               "AND NOT ST_Intersects(a.geom, s.geom)",
                         "'lies outside county ' || s.county_code", {}, per_row=False,
                         joins="JOIN admin_division a ON a.code = s.county_code"))
    return out
