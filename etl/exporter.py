"""Export a layer, or a region of it, as GeoPackage, Shapefile (UTF-8, or GBK with .cpg) or
GeoJSON, in EPSG:4490 with the registry's fields; and the one GIS-file writer the OGC API
downloads (`app/ogc/downloads.py`, f=gpkg / f=shp) use as well.

Rows are `(id, *fields, wkb)` and come in batches, written with pyogrio (append), so memory
stays bounded for big layers. Shapefile DBF names are at most 10 characters (`dbf_names`):
the customary database name (DLBM, TBBH, WXRS …) where the import mapping declares one, so
the file reads back through the importer, else the field name cut to 10 characters (`_1`,
`_2` … when two would clash); beside the `.shp` a field table (`fields.csv` in a download,
`<name>.fields.csv` from the CLI) gives each DBF name's full field name, zh and en titles.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pyogrio.raw
from sqlalchemy import Connection, text

from etl.importer import mapping
from etl.importer.errors import ImportFailed
from layers import REGISTRY
from layers.registry import Field, FieldType, Geometry, Layer, STORAGE_SRID

FORMATS = {".gpkg": "GPKG", ".shp": "ESRI Shapefile", ".geojson": "GeoJSON", ".json": "GeoJSON"}
GEOMETRY_TYPES = {Geometry.MULTIPOLYGON: "MultiPolygon", Geometry.POINT: "Point",
                  Geometry.MULTILINESTRING: "MultiLineString"}
CHUNK = 100_000


class ExportFailed(ImportFailed):
    pass


def export_layer(conn: Connection, layer_name: str, path: Path | str, *, county: str | None = None,
                 bbox: tuple[float, float, float, float] | None = None, encoding: str = "UTF-8") -> int:
    """Write `layer_name` (optionally only `county`'s rows and/or those meeting `bbox` in lon/lat)
    to `path`, the format chosen by its suffix; returns the number of features written."""
    layer = REGISTRY[layer_name]
    path = Path(path)
    driver = FORMATS.get(path.suffix.lower())
    if driver is None:
        raise ExportFailed(f"{path.name}: unsupported export format; use one of {', '.join(FORMATS)}")
    if encoding.upper() not in ("UTF-8", "GBK"):
        raise ExportFailed(f"encoding {encoding}: use UTF-8 or GBK")
    if county is not None and "county_code" not in {f.name for f in layer.fields}:
        raise ExportFailed(f"layer {layer.name} has no county_code to filter on")
    where, params = ["TRUE"], {}
    if county is not None:
        where.append("county_code = :county")
        params["county"] = county
    if bbox is not None:
        where.append(f"geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}) "
                     f"AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}))")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    fields = list(layer.fields)
    cols = ", ".join(f.name for f in fields)
    sql = text(f"SELECT id, {cols}, ST_AsBinary(geom) AS wkb FROM {layer.table} "
               f"WHERE {' AND '.join(where)} ORDER BY id")
    if path.exists():
        path.unlink()
    result = conn.execute(sql.execution_options(stream_results=True, yield_per=CHUNK), params)
    written = 0

    def batches():
        nonlocal written
        if driver == "GeoJSON":          # GDAL cannot append to GeoJSON: one write
            parts = [result.fetchall()]
        else:
            parts = result.partitions(CHUNK)
        for rows in parts:
            written += len(rows)
            yield rows

    if driver == "ESRI Shapefile":
        write_shapefile(path, layer, fields, batches(), STORAGE_SRID, encoding=encoding.upper())
    else:
        write_layer(path, driver, layer, ["id", *(f.name for f in fields)], fields, batches(), STORAGE_SRID)
    return written


def dbf_names(layer: Layer, fields: Iterable[Field]) -> list[str]:
    """The DBF column names of `id` and `fields`: the same for a field whichever fields are chosen."""
    short = mapping.short_names(layer)
    return ["id", *(short[f.name] for f in fields)]


def write_shapefile(path: Path, layer: Layer, fields: list[Field], batches: Iterable[list], srid: int, *,
                    encoding: str = "UTF-8", table: Path | None = None) -> None:
    """`path` (.shp, .shx, .dbf, .prj, .cpg) with DBF names from `dbf_names`, and the field table
    `table` (default `<name>.fields.csv` beside it): dbf_name, name, zh, en, unit per column."""
    names = dbf_names(layer, fields)
    write_layer(path, "ESRI Shapefile", layer, names, fields, batches, srid, encoding=encoding)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["dbf_name", "name", "zh", "en", "unit"])
    writer.writerow(["id", "id", "标识", "Identifier", ""])
    for dbf_name, f in zip(names[1:], fields):
        writer.writerow([dbf_name, f.name, f.zh, f.en, f.unit or ""])
    (table or path.with_suffix(".fields.csv")).write_text(out.getvalue(), encoding="utf-8")


def write_layer(path: Path, driver: str, layer: Layer, names: list[str], fields: list[Field],
                batches: Iterable[list], srid: int, **options) -> None:
    """Write batches of `(id, *fields, wkb)` rows to `path` with `driver`, one append per batch;
    an empty selection is an empty layer with its fields."""
    common = dict(driver=driver, layer=path.stem, geometry_type=GEOMETRY_TYPES[layer.geometry],
                  crs=f"EPSG:{srid}", **options)
    written = False
    for rows in batches:
        geometry = np.array([None if r[-1] is None else bytes(r[-1]) for r in rows], dtype=object)
        data, masks = _columns(fields, rows)
        pyogrio.raw.write(str(path), geometry, data, names, field_mask=masks, append=written, **common)
        written = True
    if not written:
        data, _ = _columns(fields, [])
        pyogrio.raw.write(str(path), np.array([], dtype=object), data, names, **common)


def _columns(fields: list[Field], rows: list) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Field arrays (and null masks) for pyogrio from a batch of (id, *fields, wkb) rows; several
    codes are written comma-separated, as the importer reads them."""
    data: list[np.ndarray] = [np.array([r[0] for r in rows], dtype=np.int64)]
    masks: list[np.ndarray | None] = [None]
    for i, f in enumerate(fields, start=1):
        values = [r[i] for r in rows]
        nulls = np.array([v is None for v in values], dtype=bool)
        if f.type == FieldType.INTEGER:
            data.append(np.array([0 if v is None else v for v in values], dtype=np.int64))
        elif f.type == FieldType.FLOAT:
            data.append(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
        elif f.type == FieldType.BOOLEAN:
            data.append(np.array([bool(v) for v in values], dtype=bool))
        elif f.type == FieldType.DATE:
            data.append(np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "D") for v in values],
                                 dtype="datetime64[D]"))
        elif f.type == FieldType.DATETIME:
            data.append(np.array([np.datetime64("NaT") if v is None else np.datetime64(_utc(v), "ms")
                                  for v in values], dtype="datetime64[ms]"))
        elif f.type == FieldType.CODES:
            data.append(np.array([None if v is None else ",".join(v) for v in values], dtype=object))
        elif f.type == FieldType.JSON:
            data.append(np.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
                                 dtype=object))
        else:
            data.append(np.array([None if v is None else str(v) for v in values], dtype=object))
        masks.append(nulls if nulls.any() and data[-1].dtype != object else None)
    return data, masks


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
