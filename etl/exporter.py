"""Export a layer, or a region of it, as GeoPackage, Shapefile (UTF-8, or GBK with .cpg) or
GeoJSON, in EPSG:4490 with the registry's fields.

Shapefile field names are limited to 10 characters: the customary database names (DLBM,
TBBH …) are used where the import mapping declares them, so the file reads back through the
importer. Rows are written in chunks (append) so memory stays bounded for big layers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio.raw
from sqlalchemy import Connection, text

from etl.importer import mapping
from etl.importer.errors import ImportFailed
from layers import REGISTRY
from layers.registry import Field, FieldType, Geometry, STORAGE_SRID

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
    names = mapping.short_names(layer) if driver == "ESRI Shapefile" else {f.name: f.name for f in layer.fields}
    where, params = ["TRUE"], {}
    if county is not None:
        where.append("county_code = :county")
        params["county"] = county
    if bbox is not None:
        where.append(f"geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}) "
                     f"AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}))")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    cols = ", ".join(f.name for f in layer.fields)
    sql = text(f"SELECT {cols}, ST_AsBinary(geom) AS wkb FROM {layer.table} WHERE {' AND '.join(where)} ORDER BY id")
    if path.exists():
        path.unlink()
    result = conn.execute(sql.execution_options(stream_results=True, yield_per=CHUNK), params)
    if driver == "GeoJSON":          # GDAL cannot append to GeoJSON: one write
        rows = result.fetchall()
        _write(path, driver, layer, names, rows, encoding, append=False)
        return len(rows)
    written = 0
    for rows in result.partitions(CHUNK):
        _write(path, driver, layer, names, rows, encoding, append=written > 0)
        written += len(rows)
    if written == 0:
        _write(path, driver, layer, names, [], encoding, append=False)
    return written


def _write(path, driver, layer, names, rows, encoding, append: bool) -> None:
    fields = list(layer.fields)
    data = [_column(f, [r[i] for r in rows]) for i, f in enumerate(fields)]
    wkb = np.array([bytes(r[-1]) for r in rows], dtype=object)
    kwargs = {"encoding": encoding} if driver == "ESRI Shapefile" else {}
    pyogrio.raw.write(str(path), wkb, data, fields=[names[f.name] for f in fields],
                      geometry_type=GEOMETRY_TYPES[layer.geometry], crs=f"EPSG:{STORAGE_SRID}", driver=driver,
                      append=append, **kwargs)


def _column(f: Field, values: list) -> np.ndarray:
    if f.type == FieldType.INTEGER:
        if any(v is None for v in values):
            return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
        return np.array(values, dtype="int64")
    if f.type == FieldType.FLOAT:
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if f.type == FieldType.DATE:
        return np.array([np.datetime64(v) if v is not None else np.datetime64("NaT") for v in values],
                        dtype="datetime64[D]")
    if f.type == FieldType.DATETIME:
        return np.array([np.datetime64(v.astimezone().replace(tzinfo=None)) if v is not None else np.datetime64("NaT")
                         for v in values], dtype="datetime64[ms]")
    if f.type == FieldType.CODES:
        return np.array([None if v is None else ",".join(v) for v in values], dtype=object)
    if f.type == FieldType.JSON:
        return np.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], dtype=object)
    if f.type == FieldType.BOOLEAN:
        return np.array([None if v is None else ("t" if v else "f") for v in values], dtype=object)
    return np.array(values, dtype=object)
