"""The staging table of one batch: every source value arrives as text (a binary COPY), one
column per registry field; the set checks (checks.py) run over it and the insert casts in one
statement. Identifiers are registry field names (code-defined), values are parameters.

The stage is an UNLOGGED table named by the batch (layer and file hash), not a TEMP one:
PostgreSQL never scans a temporary table in parallel, an unlogged one it does (the set checks
use both cores). It is created inside the import's transaction, so a rejected, failed, dry or
crashed import takes it away with its rollback; a successful one drops it before the commit.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from layers.registry import STORAGE_SRID, Field, FieldType, Geometry, Layer
from etl.importer.checks import FALSE_WORDS, FORMATS, TRUE_WORDS, sql_list
from services.areas import area_sql

PREFIX = "import_stage_"


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


def fixed(raw: np.ndarray) -> pa.Array:
    """A structured numpy array's records as a binary Arrow array (one value per record)."""
    size = raw.dtype.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(raw), [None, pa.py_buffer(raw.tobytes())]) \
        .cast(pa.binary())


def _fields(values) -> tuple[pa.Array, pa.Array]:
    """A column's values as fields of a binary COPY row: a 4-byte big-endian length, then the
    bytes as they are (text: its UTF-8; geometry: WKB, read by PostGIS's geometry_recv); NULL:
    length -1 and no bytes (the row's join replaces a null by nothing)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_binary(values.type):
        values = values.cast(pa.binary())      # (large types: one slice of STEP rows is well below 2 GB)
    lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False).astype(">i4")
    return fixed(lengths), values


def copy_rows(cur, stage: str, field_names: list[str], columns: list, geoms, rows: list[int],
              progress=lambda done, total: None) -> None:
    """The stage's rows: their numbers, `columns` (per field a list or an Arrow array of text;
    None: all NULL), `geoms` (the WKB: an Arrow binary array, or an array of bytes)."""
    n = len(rows)
    copy_binary(cur, stage, ["row_no", *field_names, "geom"],
                [fixed(np.asarray(rows, dtype=">i4")), *(text_column(c, n) for c in columns), wkb_column(geoms, n)],
                progress)


def copy_binary(cur, table: str, names: list[str], columns: list[pa.Array], progress=lambda done, total: None,
                started=lambda: None) -> None:
    """One COPY in PostgreSQL's binary format: per column an Arrow binary (or text) array of each
    value's binary form (text: its UTF-8; geometry: WKB, read by PostGIS's geometry_recv; numbers
    and dates: see `encode`; null: NULL). Each row's fields are joined by Arrow (C++, no Python
    loop per cell; no CSV quoting, no hex WKB), in slices of STEP rows, the next one joined in a
    thread while PostgreSQL parses the current one (Arrow releases the GIL). `started()` is called
    once the first slice is on its way."""
    n = len(columns[0])
    sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"

    def joined(start: int) -> bytes:
        stop = min(start + STEP, n)
        parts = [fixed(np.full(stop - start, len(columns), dtype=">i2"))]     # each row: its field count,
        for c in columns:                                                     # then its fields
            parts.extend(_fields(c.slice(start, stop - start)))
        rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.binary()), null_handling="replace",
                                           null_replacement="")
        _, offsets, data = rows.buffers()
        off = np.frombuffer(offsets, dtype=np.int32)[rows.offset:rows.offset + len(rows) + 1]
        return memoryview(data)[off[0]:off[-1]]

    with ThreadPoolExecutor(max_workers=1) as joiner:
        starts = iter(range(0, n, STEP))
        pending = [joiner.submit(joined, next(starts))] if n else []

        class Stream:
            """What COPY reads: the header, each slice as soon as it is joined, the trailer."""
            head = _COPY_HEADER

            def read(self, size: int) -> bytes:
                if not pending:
                    out, self.head = self.head, b""
                    return out
                body = pending.pop().result()
                start = next(starts, None)
                if start is not None:
                    pending.append(joiner.submit(joined, start))
                if self.head:           # the first slice
                    started()
                out, self.head = self.head + bytes(body), b""
                progress(n if start is None else start, n)
                if start is None:
                    out += _COPY_TRAILER
                return out

        # read in large pieces: the GIL taken once per slice, not once per MB (a worker thread holding
        # it between reads starved the COPY)
        cur.copy_expert(sql, Stream(), size=1 << 30)


def encode(f: Field, text: pa.Array) -> pa.Array | None:
    """A column's text in the binary COPY form of the field's type, as the insert's casts
    (`cast_sql`) read it; a value the checks reject (not a number, ...) as NULL. None: a type
    this does not encode, or a value the cast would refuse though the checks pass it (a
    31 February, a number beyond double precision)."""
    if f.type in (FieldType.TEXT, FieldType.CODE):
        return text
    if f.type not in (FieldType.INTEGER, FieldType.FLOAT, FieldType.DATE, FieldType.BOOLEAN):
        return None
    if f.type == FieldType.BOOLEAN:
        low = pc.utf8_lower(text)
        yes = pc.is_in(low, value_set=pa.array(TRUE_WORDS, pa.string()))
        known = pc.or_(yes, pc.is_in(low, value_set=pa.array(FALSE_WORDS, pa.string())))
        return _raw(yes.to_numpy(zero_copy_only=False).astype("u1"), known)
    good = pc.fill_null(pc.match_substring_regex(text, FORMATS[f.type][0]), False)
    usable = pc.if_else(good, text, pa.scalar(None, pa.string()))
    try:
        if f.type == FieldType.INTEGER:
            return _raw(pc.cast(pc.replace_substring_regex(usable, r"^\+", ""), pa.int64()), good, ">i8")
        if f.type == FieldType.FLOAT:
            number = pc.cast(usable, pa.float64())
            if pc.any(pc.invert(pc.is_finite(number))).as_py():      # beyond double precision
                return None
            return _raw(number, good, ">f8")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _dates(usable, good)


def _raw(values, valid: pa.Array, dtype: str | None = None) -> pa.Array:
    """Fixed-size values as binary, big-endian (`dtype`), NULL where not `valid`."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)
    raw = fixed(values.astype(dtype) if dtype else values)
    return pc.if_else(pc.fill_null(valid, False), raw, pa.scalar(None, pa.binary()))


def _dates(text: pa.Array, good: pa.Array) -> pa.Array | None:
    """YYYY-MM-DD, YYYY/M/D, YYYY.M.D and YYYYMMDD as days since 2000-01-01 (int4)."""
    try:                                # all of them YYYY-MM-DD (the usual case): Arrow's strict ISO parse
        since_1970 = pc.cast(pc.cast(text, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        return _raw(np.nan_to_num(since_1970).astype(np.int64) - _DAYS_1970_2000, good, ">i4")
    except pa.ArrowInvalid:
        pass
    iso = pc.replace_substring_regex(text, r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3")
    parts = pc.split_pattern_regex(pc.fill_null(iso, "2000-1-1"), r"[-/.]")
    y, m, d = (pc.cast(pc.list_element(parts, k), pa.int32()).to_numpy(zero_copy_only=False) for k in range(3))
    months = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (d - 1)
    if (days.astype("datetime64[M]") != months).any():      # 31 February: the cast refuses it
        return None
    return _raw((days - np.datetime64("2000-01-01")).astype(np.int64), good, ">i4")


_DAYS_1970_2000 = 10957


# ISO WKB type codes (2D) of a layer's single and multi geometry; the single one is wrapped
_WKB_TYPES = {Geometry.MULTIPOLYGON: (3, 6), Geometry.MULTILINESTRING: (2, 5), Geometry.POINT: (1, 1)}


def layer_wkb(layer: Layer, wkb: pa.Array) -> pa.Array | None:
    """A file's WKB as the layer's column takes it (plain WKB: its typmod gives it the SRID):
    single polygons or lines as multi ones of one part (ST_Multi's result, byte for byte), a
    missing geometry as an empty one (a row the checks reject; the column is NOT NULL). None:
    some geometry is of another type or has Z or M (the insert's casts decide on those)."""
    single, multi = _WKB_TYPES[layer.geometry]
    head = pc.binary_slice(wkb, 0, 5)

    def header(kind: int, little: bool) -> pa.Scalar:
        return pa.scalar(b"\x01" + kind.to_bytes(4, "little") if little else b"\x00" + kind.to_bytes(4, "big"),
                         pa.binary())

    kinds = {(kind, little): pc.fill_null(pc.equal(head, header(kind, little)), False)
             for kind in {single, multi} for little in (True, False)}
    known = pc.or_(pc.is_null(wkb), kinds[(single, True)])
    for mask in kinds.values():
        known = pc.or_(known, mask)
    if not pc.all(known).as_py():
        return None
    if multi == 1:                      # points: nothing to wrap; an empty point is POINT(NaN NaN)
        empty = pa.scalar(header(1, True).as_py() + np.array([np.nan, np.nan], "<f8").tobytes(), pa.binary())
    else:
        empty = pa.scalar(header(multi, True).as_py() + b"\x00" * 4, pa.binary())
    out = pc.fill_null(wkb, empty) if wkb.null_count else wkb
    for little in (True, False):        # (each pass copies the whole array: only when there is one to wrap)
        if multi != single and pc.any(kinds[(single, little)]).as_py():
            one = pa.scalar(header(multi, little).as_py() + (1).to_bytes(4, "little" if little else "big"), pa.binary())
            wrapped = pc.binary_join_element_wise(one, out, pa.scalar(b"", pa.binary()))
            out = pc.if_else(kinds[(single, little)], wrapped, out)
    return out


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
