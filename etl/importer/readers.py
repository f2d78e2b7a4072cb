"""Reading a submission into columns of text and an array of Shapely geometries.

Formats: Shapefile (loose or zipped; encoding from the .cpg, else detected among UTF-8, GBK
and GB18030 from the DBF's own bytes), GeoPackage, GeoJSON (through pyogrio/GDAL), CSV and
XLSX (etl.importer.xlsx) with a WKT column or x/y columns, and corner-coordinate lists
(拐点坐标, `.txt`, via etl.corners) whose `# 字段: 值` header lines carry the attributes.
"""
from __future__ import annotations

import csv
import io
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS

from etl import corners
from etl.importer.errors import ReadFailed
from etl.importer.safety import Limits

VECTOR_SUFFIXES = {".shp": "ESRI Shapefile", ".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
CSV_SUFFIXES = {".csv"}
XLSX_SUFFIXES = {".xlsx"}
CORNER_SUFFIXES = {".txt"}
SUPPORTED = set(VECTOR_SUFFIXES) | CSV_SUFFIXES | XLSX_SUFFIXES | CORNER_SUFFIXES
CANDIDATE_ENCODINGS = ("UTF-8", "GBK", "GB18030")
CPG_NAMES = {"936": "GBK", "CP936": "GBK", "GB2312": "GBK", "GBK": "GBK", "GB18030": "GB18030",
             "UTF-8": "UTF-8", "UTF8": "UTF-8", "65001": "UTF-8"}
WKT_COLUMNS = ("WKT", "GEOMETRY", "GEOM", "SHAPE", "几何", "坐标串")
XY_COLUMNS = (("LON", "LAT"), ("LONGITUDE", "LATITUDE"), ("LNG", "LAT"), ("经度", "纬度"),
              ("X", "Y"), ("X坐标", "Y坐标"), ("横坐标", "纵坐标"))
SURVEYOR_XY = {("X", "Y"), ("X坐标", "Y坐标")}   # may follow the surveyors' X = northing


@dataclass
class Source:
    name: str
    columns: dict[str, list | pa.Array]         # source column -> values as text (str | None)
    _geometries: np.ndarray | None              # shapely geometries (None where missing); None: from `wkb`
    declared_epsg: int | None = None            # from .prj / GeoPackage / GeoJSON "crs"
    declared_crs: str | None = None             # as written, for messages
    encoding: str | None = None
    surveyor_axes: bool = False                 # CSV X/Y columns: X may be the northing
    corner_text: str | None = None              # a corner list's corners (拐点), unconverted
    notes: list[str] = field(default_factory=list)
    row_numbers: list[int] | None = None        # as the submitter sees them (spreadsheet rows); else 1..n
    sheet: str | None = None                    # the spreadsheet's sheet that was read
    excel_epoch: object = None                  # a workbook's date system: number cells in date fields are serials
    problems: list[tuple[int, str | None, str]] = field(default_factory=list)   # (row, column, error) found reading
    wkb: pa.ChunkedArray | None = None          # GDAL formats: the file's WKB, read as Arrow; the engine stages
                                                # it as it is and reads it with Shapely in parallel

    def __len__(self) -> int:
        return len(self.wkb) if self.wkb is not None else len(self._geometries)

    @property
    def geometries(self) -> np.ndarray:
        """Shapely geometries (None where missing or unreadable), read from `wkb` on first use."""
        if self._geometries is None and self.wkb is not None:
            wkb = self.wkb.to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):     # NaN coordinates are reported by the engine, by row
                self._geometries = in_pieces(lambda part: shapely.from_wkb(part, on_invalid="ignore"), wkb)
        return self._geometries

    def forget_geometries(self) -> None:
        """Free the Shapely geometries read from `wkb` (read again on next use), piece by piece:
        the thread freeing them lets others take the GIL in between."""
        if self.wkb is not None and self._geometries is not None:
            geoms, self._geometries = self._geometries, None
            for start in range(0, len(geoms), PIECE):
                geoms[start:start + PIECE] = None


PIECE = 5_000    # a Shapely call holds the GIL throughout: the engine reads in pieces of this many


def in_pieces(fn, values: np.ndarray) -> np.ndarray:
    """`fn` over `values` piece by piece, the results concatenated. Shapely reads a file's geometries
    in a thread while the engine's main thread drives PostgreSQL, which needs the GIL only for a
    moment between statements; one call over 1M geometries kept it waiting ~1.5 s, idle."""
    if len(values) <= PIECE:
        return fn(values)
    return np.concatenate([fn(values[i:i + PIECE]) for i in range(0, len(values), PIECE)])


def read_source(path: Path, display: str, limits: Limits, sheet: str | None = None) -> Source:
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ReadFailed(f"{display}: the file is empty")
    if sheet is not None and suffix not in XLSX_SUFFIXES:
        raise ReadFailed(f"{display}: --sheet applies to .xlsx workbooks only")
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, display, limits.max_features)
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, display, limits.max_features)
    if suffix in XLSX_SUFFIXES:
        from etl.importer import xlsx          # openpyxl only when a workbook comes
        return xlsx.read_xlsx(path, display, limits, sheet)
    if suffix in CORNER_SUFFIXES:
        return _read_corners(path, display)
    raise ReadFailed(f"{display}: unsupported format {suffix or '(no extension)'}; "
                     f"expected one of {', '.join(sorted(SUPPORTED | {'.zip'}))}")


# --- encodings -------------------------------------------------------------------------------

def _decode_guess(data: bytes) -> str:
    for enc in CANDIDATE_ENCODINGS:
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    raise ReadFailed("the text is neither UTF-8, GBK nor GB18030")


def shapefile_encoding(shp: Path, display: str) -> tuple[str, str]:
    """(encoding, how it was found) of a shapefile's DBF."""
    cpg = shp.with_suffix(".cpg")
    if not cpg.exists():
        cpg = next((p for p in shp.parent.glob(shp.stem + ".*") if p.suffix.lower() == ".cpg"), cpg)
    if cpg.exists():
        name = cpg.read_text("ascii", errors="replace").strip().upper()
        if name in CPG_NAMES:
            return CPG_NAMES[name], ".cpg"
    dbf = _sidecar(shp, ".dbf", display)
    sample = _dbf_text_sample(dbf, display)
    try:
        return _decode_guess(sample), "detected"
    except ReadFailed:
        raise ReadFailed(f"{display}: {dbf.name} is neither UTF-8, GBK nor GB18030; add a .cpg") from None


def _sidecar(shp: Path, suffix: str, display: str) -> Path:
    for p in shp.parent.glob(shp.stem + ".*"):
        if p.suffix.lower() == suffix:
            return p
    raise ReadFailed(f"{display}: the shapefile has no {suffix} file beside {shp.name}")


def _dbf_text_sample(dbf: Path, display: str, limit: int = 4 << 20) -> bytes:
    """The records' bytes (up to `limit`), after checking the DBF header is consistent."""
    size = dbf.stat().st_size
    with open(dbf, "rb") as fh:
        head = fh.read(32)
        if len(head) < 32:
            raise ReadFailed(f"{display}: {dbf.name} is corrupt (a DBF header needs 32 bytes, found {len(head)})")
        n_records, header_len, record_len = struct.unpack("<IHH", head[4:12])
        if header_len < 33 or record_len < 1 or header_len + n_records * record_len > size:
            raise ReadFailed(f"{display}: {dbf.name} is corrupt (its header announces {n_records} records of "
                             f"{record_len} bytes after {header_len} header bytes, but the file holds {size} bytes)")
        fh.seek(header_len)
        return fh.read(min(limit, n_records * record_len))


# --- vector files through GDAL ---------------------------------------------------------------

def _epsg(crs_text: str | None) -> int | None:
    if not crs_text:
        return None
    try:
        return CRS.from_user_input(crs_text).to_epsg(min_confidence=70)
    except Exception:
        return None


def _read_vector(path: Path, display: str, max_features: int) -> Source:
    driver = VECTOR_SUFFIXES[path.suffix.lower()]
    encoding, notes = None, []
    if driver == "ESRI Shapefile":
        _sidecar(path, ".dbf", display)
        _sidecar(path, ".shx", display)
        encoding, how = shapefile_encoding(path, display)
        notes.append(f"encoding {encoding} ({how})")
    try:
        layers = pyogrio.list_layers(path)
        if len(layers) == 0:
            raise ReadFailed(f"{display}: holds no layer")
        if len(layers) > 1:
            notes.append(f"the file holds {len(layers)} layers; read the first, {layers[0][0]!r}")
        info = pyogrio.read_info(path, layer=0, encoding=encoding)
        if info["features"] > max_features:
            raise ReadFailed(f"{display}: {info['features']:,d} features, more than the limit of {max_features:,d}")
        meta, table = pyogrio.raw.read_arrow(path, layer=0, encoding=encoding)    # columnar: ~15x raw.read
    except ReadFailed:
        raise
    except Exception as exc:   # GDAL's errors come in several classes; all mean "unreadable"
        raise ReadFailed(f"{display}: cannot be read as {driver} ({_gdal_message(exc)})") from None
    declared = meta.get("crs")
    if driver == "GeoJSON" and not _geojson_names_crs(path):
        declared = None        # RFC 7946 files carry no CRS; GDAL's EPSG:4326 is only the default
    geometry = meta.get("geometry_name") or "wkb_geometry"
    if meta.get("geometry_type") is None or geometry not in table.column_names:
        raise ReadFailed(f"{display}: has no geometry column")
    with ThreadPoolExecutor(max_workers=2) as pool:       # Arrow releases the GIL: both cores
        columns = dict(zip(meta["fields"], pool.map(lambda name: _as_text(table.column(name)), meta["fields"])))
    return Source(display, columns, None, _epsg(declared), declared, encoding, notes=notes,
                  wkb=table.column(geometry))


def _gdal_message(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _geojson_names_crs(path: Path) -> bool:
    with open(path, "rb") as fh:
        return b'"crs"' in fh.read(1 << 16)


def _as_text(values: pa.ChunkedArray) -> pa.Array:
    """A column as stripped text (null for missing/blank), integral floats without '.0', dates as
    ISO dates, booleans as t/f: in Arrow, column-wise."""
    t = values.type
    values = values.combine_chunks()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(values)
        blank = pc.equal(text, "")
        return pc.if_else(blank, pa.scalar(None, text.type), text) if pc.any(blank).as_py() else text
    if pa.types.is_floating(t):
        finite = pc.fill_null(pc.is_finite(values), False)
        safe = pc.if_else(finite, values, 0.0)
        integral = pc.and_(finite, pc.and_(pc.less(pc.abs(safe), 1e15), pc.equal(safe, pc.floor(safe))))
        as_int = pc.cast(pc.cast(pc.if_else(integral, safe, 0.0), pa.int64()), pa.string())
        text = pc.if_else(integral, as_int, pc.cast(safe, pa.string()))
        return pc.if_else(finite, text, pa.scalar(None, pa.string()))
    if pa.types.is_boolean(t):
        return pc.if_else(values, "t", "f")
    if pa.types.is_timestamp(t):
        return pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")
    return pc.cast(values, pa.string())


# --- CSV ----------------------------------------------------------------------------------------

def _read_text(path: Path, display: str) -> tuple[str, str]:
    """A text file (CSV, corner list) decoded as UTF-8 (BOM dropped), GBK or GB18030."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        encoding = _decode_guess(raw)
    except ReadFailed:
        raise ReadFailed(f"{display}: the text is neither UTF-8, GBK nor GB18030") from None
    return raw.decode(encoding), encoding


def geometry_columns(header: list[str]) -> tuple[int | None, tuple | None]:
    """(index of the WKT column, (x index, y index, names) of the x/y columns); None where absent."""
    keys = [h.strip().upper() for h in header]
    wkt_col = next((keys.index(k) for k in WKT_COLUMNS if k in keys), None)
    xy = next(((keys.index(a), keys.index(b), (a, b)) for a, b in XY_COLUMNS if a in keys and b in keys), None)
    return wkt_col, xy


NO_GEOMETRY_COLUMN = "no geometry column: expected WKT, or x/y (lon/lat, 经度/纬度) columns"


def table_source(display: str, header: list[str], records, max_features: int, **extra) -> Source:
    """A Source from a table (CSV, a spreadsheet's sheet): `records` yields (row number, cells as
    text or None, in header order); the WKT or x/y columns become the geometries."""
    wkt_col, xy = geometry_columns(header)
    if wkt_col is None and xy is None:
        raise ReadFailed(f"{display}: {NO_GEOMETRY_COLUMN}")
    geom_cols = {wkt_col} if wkt_col is not None else {xy[0], xy[1]}
    kept = [(i, h) for i, h in enumerate(header) if i not in geom_cols]
    columns: dict[str, list] = {h: [] for _, h in kept}
    geoms, numbers, notes = [], [], []
    for n, cells in records:
        if len(geoms) >= max_features:
            raise ReadFailed(f"{display}: more than the limit of {max_features:,d} rows")
        for i, h in kept:
            columns[h].append(cells[i])
        geoms.append(_cell_geometry(cells, wkt_col, xy, n, notes))
        numbers.append(n)
    if not geoms:
        raise ReadFailed(f"{display}: no data rows")
    src = Source(display, columns, np.array(geoms, dtype=object), row_numbers=numbers,
                 surveyor_axes=xy is not None and xy[2] in SURVEYOR_XY, **extra)
    src.notes.extend(notes)
    return src


def _read_csv(path: Path, display: str, max_features: int) -> Source:
    text, encoding = _read_text(path, display)
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise ReadFailed(f"{display}: the file is empty") from None
    try:
        return table_source(display, header, _csv_records(rows, header, display), max_features,
                            encoding=encoding, notes=[f"encoding {encoding}"])
    except csv.Error as exc:      # e.g. a cell beyond csv.field_size_limit, a NUL byte
        raise ReadFailed(f"{display}: line {rows.line_num}: {exc}") from None


def _csv_records(rows, header, display):
    n = 0                          # the record number the report uses (blank lines not counted)
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        n += 1
        if len(row) != len(header):
            raise ReadFailed(f"{display}: row {n} has {len(row)} cells, the header {len(header)}")
        yield n, [cell.strip() or None for cell in row]


def _cell_geometry(cells, wkt_col, xy, n, problems):
    if wkt_col is not None:
        text = cells[wkt_col]
        if not text:
            return None
        with np.errstate(invalid="ignore"):     # NaN coordinates are reported by the engine, by row
            geom = shapely.from_wkt(text, on_invalid="ignore")
        if geom is None:
            problems.append(f"row {n}: unreadable WKT")
        return geom
    try:
        return shapely.Point(float(cells[xy[0]]), float(cells[xy[1]]))
    except (TypeError, ValueError):
        problems.append(f"row {n}: x/y are not numbers")
        return None


# --- corner lists --------------------------------------------------------------------------------

HEADER_LINE = re.compile(r"^#\s*([^:=：]+?)\s*[:=：]\s*(.*?)\s*$")


def _read_corners(path: Path, display: str) -> Source:
    """One feature: the attributes from `# 字段: 值` lines, the boundary from the corners.

    The corners stay in their Gauss-Krüger CRS here (converted by the engine, which knows the
    declared county for a missing zone prefix); the text is kept for the `corners` field."""
    text, encoding = _read_text(path, display)
    attrs: dict[str, list] = {}
    for line in text.splitlines():
        m = HEADER_LINE.match(line.strip())
        if m:
            attrs[m.group(1)] = [m.group(2) or None]
    try:
        corners.parse_corners(text)
    except corners.CornerError as exc:
        raise ReadFailed(f"{display}: {exc}") from None
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
    return Source(display, attrs, np.array([None], dtype=object), encoding=encoding,
                  notes=[f"encoding {encoding}"], corner_text=body)
