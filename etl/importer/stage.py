"""The staging table of one batch and the SQL that validates it, set-based.

Every source value arrives as text (COPY), one column per registry field; checks are SQL
predicates over the whole table, each giving (row, field, problem); the insert casts in one
statement. Identifiers are registry field names (code-defined), values are parameters.
"""
from __future__ import annotations

import binascii
import io
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from layers.registry import STORAGE_SRID, Field, FieldType, Geometry, Layer
from services.areas import area_sql

STAGE = "import_stage"
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


def sql_list(words) -> str:
    """('a', 'b') for code-defined words (never user input)."""
    return "(" + ", ".join(f"'{w}'" for w in words) + ")"


def create(cur, fields: Iterable[Field]) -> None:
    cols = ", ".join(f"{f.name} text" for f in fields)
    cur.execute(f"DROP TABLE IF EXISTS {STAGE}")
    # the typmod gives plain WKB (no SRID) the storage SRID as it is copied in
    cur.execute(f"CREATE TEMP TABLE {STAGE} (row_no integer PRIMARY KEY, {cols}{', ' if cols else ''}"
                f"geom geometry(Geometry, {STORAGE_SRID})) ON COMMIT DROP")


STEP = 200_000       # rows per COPY: the CSV buffer stays ~100 MB


def wkb_hex(wkb: pa.Array) -> pa.Array:
    """Binary WKB as hex text: the column's one data buffer hex-encoded at once, offsets doubled."""
    large = pa.types.is_large_binary(wkb.type) or wkb.nbytes >= 1 << 30
    if large and not pa.types.is_large_binary(wkb.type):
        wkb = wkb.cast(pa.large_binary())
    validity, offsets, data = wkb.buffers()
    off = np.frombuffer(offsets, dtype=np.int64 if large else np.int32)[wkb.offset:wkb.offset + len(wkb) + 1]
    raw = memoryview(data)[off[0]:off[-1]] if data is not None else b""
    kind = pa.LargeStringArray if large else pa.StringArray
    if wkb.offset == 0:             # the nulls stay where they are: their offsets do not move
        return kind.from_buffers(len(wkb), pa.py_buffer((off - off[0]) * 2), pa.py_buffer(binascii.hexlify(raw)),
                                 validity, wkb.null_count)
    text = kind.from_buffers(len(wkb), pa.py_buffer((off - off[0]) * 2), pa.py_buffer(binascii.hexlify(raw)))
    return pc.if_else(wkb.is_null(), pa.scalar(None, text.type), text)


def _text_column(values, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.string())
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def copy_rows(cur, field_names: list[str], columns: list, geoms_hex, rows: list[int],
              progress=lambda done, total: None) -> None:
    """COPY as CSV written by Arrow (C++, no Python loop per cell), in slices of STEP rows.
    `columns` holds per field a list or an Arrow array of text (None: all NULL)."""
    n = len(rows)
    table = pa.table([pa.array(rows, type=pa.int32()), *(_text_column(c, n) for c in columns),
                      _text_column(geoms_hex, n)], names=["row_no", *field_names, "geom"])
    sql = f"COPY {STAGE} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)"
    options = pacsv.WriteOptions(include_header=False)
    for start in range(0, n, STEP):
        buf = io.BytesIO()
        pacsv.write_csv(table.slice(start, STEP), buf, options)     # strings quoted; NULL left empty
        buf.seek(0)
        cur.copy_expert(sql, buf, size=1 << 20)
        progress(min(start + STEP, n), n)


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
    return "s.geom" if layer.geometry == Geometry.POINT else "ST_Multi(s.geom)"


def checks(layer: Layer, staged: list[Field], county_rows: bool, policy: str,
           filled_later: set[str] = frozenset()) -> list[tuple[str | None, str, str, dict]]:
    """(field, SQL predicate on `s`, SQL expression for the problem text, params) per check."""
    out: list[tuple[str | None, str, str, dict]] = []
    allowed = ALLOWED_TYPES[layer.geometry]
    words = TYPE_WORDS[layer.geometry]
    out.append((None, "s.geom IS NULL", "'no geometry'", {}))
    out.append((None, f"s.geom IS NOT NULL AND ST_GeometryType(s.geom) NOT IN {sql_list(allowed)}",
                f"'wrong geometry type ' || substr(ST_GeometryType(s.geom), 4) || ': {layer.name} takes {words}'", {}))
    out.append((None, f"s.geom IS NOT NULL AND ST_GeometryType(s.geom) IN {sql_list(allowed)} AND ST_IsEmpty(s.geom)",
                "'empty geometry'", {}))
    if policy == "reject":
        out.append((None, f"ST_GeometryType(s.geom) IN {sql_list(allowed)} AND NOT ST_IsEmpty(s.geom) AND NOT ST_IsValid(s.geom)",
                    "'invalid geometry (' || ST_IsValidReason(s.geom) || '); this layer does not repair geometries'",
                    {}))
    for f in staged:
        col = f"s.{f.name}"
        if f.required and f.name not in filled_later:
            out.append((f.name, f"{col} IS NULL", f"'required {f.zh} ({f.name}) is missing'", {}))
        if f.type in FORMAT_CHECKS:
            pattern, words_ = FORMAT_CHECKS[f.type]
            out.append((f.name, f"{col} IS NOT NULL AND {col} !~ %(re_{f.name})s",
                        f"quote_literal({col}) || ' is {words_}'", {f"re_{f.name}": pattern}))
        if f.type == FieldType.BOOLEAN:
            out.append((f.name, f"{col} IS NOT NULL AND lower({col}) NOT IN {sql_list(TRUE_WORDS + FALSE_WORDS)}",
                        f"quote_literal({col}) || ' is not yes/no'", {}))
        if f.type == FieldType.CODE:
            out.append((f.name, f"{col} IS NOT NULL AND NOT ({col} = ANY(%(codes_{f.name})s))",
                        f"quote_literal({col}) || ' is not in the code list {f.codes.zh} ({f.codes.name})'",
                        {f"codes_{f.name}": list(f.codes.codes)}))
        if f.type == FieldType.CODES:
            out.append((f.name, f"{col} IS NOT NULL AND NOT ({cast_sql(f, col)} <@ %(codes_{f.name})s)",
                        f"quote_literal({col}) || ' holds a code not in the code list {f.codes.zh} ({f.codes.name})'",
                        {f"codes_{f.name}": list(f.codes.codes)}))
        if f.unique:
            out.append((f.name, f"{col} IN (SELECT d.{f.name} FROM {STAGE} d GROUP BY d.{f.name} HAVING count(*) > 1)",
                        f"'duplicate ' || quote_literal({col}) || ' within the file'", {}))
            existing = f"t.{f.name}" if f.type in (FieldType.TEXT, FieldType.CODE) else f"t.{f.name}::text"
            out.append((f.name, f"{col} IS NOT NULL AND EXISTS (SELECT 1 FROM {layer.table} t WHERE {existing} = {col})",
                        f"'duplicate: ' || quote_literal({col}) || ' is already in {layer.table}'", {}))
        if f.references:
            table, column = f.references.split(".")
            if f.type == FieldType.INTEGER:
                target = f"CASE WHEN {col} ~ '{_INT}' THEN NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col}::bigint) END"
            else:
                target = f"NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = {col})"
            out.append((f.name, f"{col} IS NOT NULL AND {target}",
                        f"quote_literal({col}) || ' does not exist in {table}.{column}'", {}))
    if county_rows:
        out.append(("county_code", "s.county_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM admin_division a "
                                   "WHERE a.code = s.county_code)",
                    "'unknown county code ' || quote_literal(s.county_code)", {}))
        out.append(("county_code", "%(declared_county)s::text IS NOT NULL AND s.county_code <> %(declared_county)s",
                    "'county ' || s.county_code || ' is not the declared county ' || %(declared_county)s", {}))
        # rows in county order, the county's outline fetched by code (unknown code: NULL, no finding): each
        # county's prepared geometry is reused across its rows (106k parcels: 0.60 -> 0.26 s; the GiST probe
        # of admin_division per row and a file not grouped by county thrashed PostGIS's cache)
        out.append((None, f"s.row_no IN (SELECT o.row_no FROM (SELECT row_no, county_code, geom FROM {STAGE} "
                          "ORDER BY county_code) o "
                          f"WHERE ST_GeometryType(o.geom) IN {sql_list(allowed)} AND NOT ST_IsEmpty(o.geom) AND NOT "
                          "ST_Intersects((SELECT a.geom FROM admin_division a WHERE a.code = o.county_code), o.geom))",
                    "'lies outside county ' || s.county_code", {}))
    return out
